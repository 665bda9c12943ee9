// Two turns of the Vercel AI SDK's default OpenAI provider (the Responses API,
// store: true) against the relay, for tests/test_responses_vercel.py.
//
// usage: node vercel_item_reference.mjs '{"baseURL": ".../v1", "model": "remote",
//                                         "stream": false, "prompts": ["...", "..."],
//                                         "deleteFirst": false}'
//        deleteFirst: DELETE turn one's response before turn two, whose
//        references then name nothing stored.
// env:   VERCEL_AI_SDK_DIR  the npm prefix holding `ai` and `@ai-sdk/openai`
//
// Prints one JSON object on stdout: each turn's text, reasoning text and
// response messages, and the request bodies the SDK sent (recorded through the
// provider's `fetch` option). A failing turn is reported as `error`, with the
// bodies sent so far, and a non-zero exit.
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const sdkDir = process.env.VERCEL_AI_SDK_DIR || path.join(here, "..", "..", ".venv", "vercel");
const require = createRequire(path.join(sdkDir, "package.json"));
const { generateText, streamText } = require("ai");
const { createOpenAI } = require("@ai-sdk/openai");

const config = JSON.parse(process.argv[2]);
const requests = [];

async function recordingFetch(url, init) {
  let body = init && init.body;
  try {
    body = JSON.parse(body);
  } catch {
    // not JSON: keep it as sent
  }
  const entry = { url: String(url), method: (init && init.method) || "GET", body };
  requests.push(entry);
  const response = await fetch(url, init);
  entry.status = response.status;
  if (!response.ok) {
    entry.error = await response.clone().text();
  }
  return response;
}

const provider = createOpenAI({ baseURL: config.baseURL, apiKey: "x", fetch: recordingFetch });
const model = provider(config.model);

async function turn(messages) {
  if (!config.stream) {
    const result = await generateText({ model, messages, maxRetries: 0 });
    return { text: result.text, reasoningText: result.reasoningText ?? null,
             messages: result.response.messages, responseId: result.response.id };
  }
  let streamError = null;
  const result = streamText({ model, messages, maxRetries: 0,
                              onError: ({ error }) => { streamError = error; } });
  const text = await result.text;
  if (streamError) {
    throw streamError;
  }
  const response = await result.response;
  return { text, reasoningText: (await result.reasoningText) ?? null,
           messages: response.messages, responseId: response.id };
}

const output = { turns: [], requests };
try {
  const first = { role: "user", content: config.prompts[0] };
  const one = await turn([first]);
  output.turns.push(one);
  if (config.deleteFirst) {
    const deleted = await fetch(`${config.baseURL}/responses/${one.responseId}`,
                                { method: "DELETE", headers: { Authorization: "Bearer x" } });
    output.deleted = deleted.status;
  }
  const two = await turn([first, ...one.messages, { role: "user", content: config.prompts[1] }]);
  output.turns.push(two);
} catch (error) {
  output.error = String((error && error.stack) || error);
  if (error && error.responseBody) {
    output.errorBody = error.responseBody;
  }
  if (error && error.statusCode) {
    output.errorStatus = error.statusCode;
  }
  process.exitCode = 1;
}
process.stdout.write(JSON.stringify(output) + "\n");
