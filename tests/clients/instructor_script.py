"""Run by tests/clients/test_instructor.py with the interpreter of
.venv-clients/instructor (instructor pins jiter below what the OpenAI SDK of
tests/requirements.txt needs): a structured answer through the relay, set up
as instructor's docs say for an OpenAI-compatible server. The base URL, key
and model come from OPENAI_BASE_URL, OPENAI_API_KEY and RELAY_MODEL."""

import os

import instructor
from openai import OpenAI
from pydantic import BaseModel


class City(BaseModel):
    name: str
    population: int


client = instructor.from_openai(OpenAI(max_retries=0), mode=instructor.Mode.TOOLS)
city = client.chat.completions.create(
    model=os.environ["RELAY_MODEL"],
    response_model=City,
    max_retries=0,
    messages=[{"role": "user", "content": "Oslo, and how many live there?"}],
)
print(city.model_dump_json())
