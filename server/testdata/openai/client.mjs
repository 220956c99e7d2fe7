// Drives mmrun serve with the official openai npm client: completions and
// chat, streaming and not, a stop string, a bad request and a wrong key.
// server/openai_test.go starts the server and runs this with MMRUN_URL
// (the server's /v1 base URL) and MMRUN_API_KEY set, then checks the JSON
// this prints on stdout. Any failed check exits 1 with a message.
import OpenAI from "openai";

const baseURL = process.env.MMRUN_URL;
const apiKey = process.env.MMRUN_API_KEY;
if (!baseURL || !apiKey) {
  console.error("client.mjs: set MMRUN_URL and MMRUN_API_KEY");
  process.exit(2);
}
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });

function check(cond, what) {
  if (!cond) {
    throw new Error(`check failed: ${what}`);
  }
}

async function main() {
  const out = {};
  const models = await client.models.list();
  check(models.data.length === 1, "one model listed");
  const model = models.data[0].id;
  out.model = model;

  const prompt = "And God said";
  const c = await client.completions.create({ model, prompt, max_tokens: 20, temperature: 0 });
  check(c.object === "text_completion", "completion object");
  check(c.choices.length === 1 && typeof c.choices[0].text === "string", "one completion choice");
  check(c.choices[0].finish_reason === "length", `finish_reason length, got ${c.choices[0].finish_reason}`);
  check(c.usage.completion_tokens === 20 && c.usage.prompt_tokens > 0, "completion usage");
  check(c.usage.total_tokens === c.usage.prompt_tokens + c.usage.completion_tokens, "total_tokens");
  out.completion = { text: c.choices[0].text, usage: c.usage };

  let streamed = "";
  let finish = null;
  let usage = null;
  const cs = await client.completions.create({
    model, prompt, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  for await (const chunk of cs) {
    if (chunk.usage) usage = chunk.usage;
    for (const ch of chunk.choices) {
      streamed += ch.text;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  check(streamed === c.choices[0].text, `streamed completion ${JSON.stringify(streamed)} equals ${JSON.stringify(c.choices[0].text)}`);
  check(finish === "length", "streamed finish_reason");
  check(usage && usage.completion_tokens === 20, "streamed usage");
  check(usage.prompt_tokens_details.cached_tokens === usage.prompt_tokens, "the repeated prompt came from the state cache");
  out.streamedUsage = usage;

  const messages = [
    { role: "system", content: "You are the King James Bible." },
    { role: "user", content: "In the beginning" },
  ];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0 });
  check(chat.object === "chat.completion", "chat object");
  check(chat.choices[0].message.role === "assistant", "assistant role");
  check(["stop", "length"].includes(chat.choices[0].finish_reason), "chat finish_reason");
  check(chat.usage.prompt_tokens > 0, "chat usage");
  out.chat = { content: chat.choices[0].message.content, finish: chat.choices[0].finish_reason, usage: chat.usage };

  let chatText = "";
  let chatFinish = null;
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0, stream: true });
  for await (const chunk of stream) {
    const ch = chunk.choices[0];
    if (ch?.delta?.content) chatText += ch.delta.content;
    if (ch?.finish_reason) chatFinish = ch.finish_reason;
  }
  check(chatText === chat.choices[0].message.content, "streamed chat equals the chat answer");
  check(chatFinish === chat.choices[0].finish_reason, "streamed chat finish_reason");

  // The next turn: the conversation so far comes from the state cache.
  const next = await client.chat.completions.create({
    model, max_tokens: 8, temperature: 0,
    messages: [...messages, { role: "assistant", content: chat.choices[0].message.content }, { role: "user", content: "And" }],
  });
  out.nextTurnCached = next.usage.prompt_tokens_details.cached_tokens;
  check(out.nextTurnCached > 0, "the next turn reuses cached state");

  const stopAt = c.choices[0].text.slice(5, 8);
  const stopped = await client.completions.create({ model, prompt, max_tokens: 20, temperature: 0, stop: [stopAt] });
  check(stopped.choices[0].finish_reason === "stop", "stop string gives finish_reason stop");
  check(stopped.choices[0].text === c.choices[0].text.slice(0, c.choices[0].text.indexOf(stopAt)), "text ends before the stop string");

  try {
    await client.completions.create({ model, prompt, max_tokens: -5 });
    check(false, "max_tokens -5 refused");
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.status === 400, `a 400 BadRequestError, got ${e}`);
    check(e.param === "max_tokens", `param max_tokens, got ${e.param}`);
  }
  try {
    await new OpenAI({ baseURL, apiKey: "wrong", maxRetries: 0 }).models.list();
    check(false, "a wrong key refused");
  } catch (e) {
    check(e instanceof OpenAI.AuthenticationError && e.status === 401, `a 401 AuthenticationError, got ${e}`);
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`client.mjs: ${e.message}`);
  process.exit(1);
});
