"""What the tests share: no tests here.

- config: a relay's settings (`relay_settings`), the process's secret key
- models: `create_model`, POST /api/create on a relay or a Flask client
- cli: the `ollama-relay` CLI in process (`cli_in`) or as a process (`cli_process`)
- postgres: a fresh schema per test
- servers: the relay under gunicorn; fake_upstream: the remote it calls
- faults, fuzzing, openai_schema, access: fault cases, schemathesis, the
  OpenAI schema checker, and what the access tests share
- paths: the checkout, the captured client requests (data/), the console script
"""
