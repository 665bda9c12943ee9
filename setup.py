from setuptools import find_packages, setup

with open("requirements.txt") as handle:
    requirements = [line.strip() for line in handle if line.strip() and not line.startswith("#")]

setup(
    name="ollama-relay",
    version="0.1.0",
    description="Ollama and OpenAI APIs in front of remote OpenAI-compatible providers",
    python_requires=">=3.11,<3.12",  # what CI tests; app/fast/ is gated on 3.11
    packages=find_packages(include=["app", "app.*", "migrations"]),
    py_modules=["wsgi"],
    install_requires=requirements,
    entry_points={"console_scripts": ["ollama-relay=app.cli:main"]},
)
