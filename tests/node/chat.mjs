// Drives the gateway with the official `openai` npm package, as a Node application would.
// Usage: node chat.mjs BASE_URL TOKEN; prints one JSON object with what it received.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const messages = [{ role: "user", content: "hi" }];

const plain = await client.chat.completions.create({ model: "default", messages });

const pieces = [];
let usage = null;
const stream = await client.chat.completions.create({
  model: "default",
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  const text = chunk.choices[0]?.delta?.content;
  if (text) pieces.push(text);
  if (chunk.usage) usage = { ...chunk.usage, choices: chunk.choices.length };
}

const model = await client.models.retrieve("pa/gpt-4o-mini");

let notFound = null;
try {
  await client.chat.completions.create({ model: "nope/model", messages });
} catch (error) {
  notFound = { status: error.status, code: error.code };
}

console.log(
  JSON.stringify({
    plain: plain.choices[0].message.content,
    pieces,
    usage,
    model: model.id,
    notFound,
  }),
);
