"""Clients of remote model servers: Chat Completions (`openai`) and Ollama
(`ollama`), over one pooled HTTP client (`http`). Nothing here knows Flask."""
