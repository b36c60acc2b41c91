// The official openai npm client against `strata serve`, started here on a free loopback port.
//
//   node serve_test.mjs STRATA_BIN
//
// The model is a synthesized tiny deepseek2 (random weights, R1 template): its text is noise, so
// the checks are on the protocol — the reasoning/answer split into reasoning_content, the stream
// against the whole answer at temperature 0, usage counts, limits, errors, auth, cancellation.
// A second server runs the shipped default model (no -m), whose reasoning and answer are real.
// Exit 77 (ctest's SKIP_RETURN_CODE) with a message when node_modules is missing.
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, 'node_modules', 'openai'))) {
  console.log('SKIP: tests/serve/node_modules is missing (run scripts/setup.sh)');
  process.exit(77);
}
const { default: OpenAI } = await import('openai');

const strata = process.argv[2];
const dir = mkdtempSync(join(tmpdir(), 'strata-serve-'));
const model = join(dir, 'tiny.gguf');
const synth = spawnSync(strata, ['synth', '--arch', 'deepseek2', '--preset', 'tiny', '-o', model]);
assert.equal(synth.status, 0, `strata synth failed: ${synth.stderr}`);

const KEY = 'test-key';
// Starts `strata serve ARGS --port 0` and waits for the port it announces.
async function startServer(args) {
  const proc = spawn(strata, [...args, '--port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no port announced: ${log}`)), 30000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = /http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${log}`)));
  });
  return { proc, port };
}
const { proc: server, port } = await startServer(['serve', '-m', model, '--api-key', KEY,
  '--parallel', '2', '--max-tokens', '4000', '--max-queue', '4', '--max-body', '65536', '-t', '1']);
const base = `http://127.0.0.1:${port}`;
const client = new OpenAI({ apiKey: KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 60000 });
const msgs = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }];

let failures = 0;
async function test(name, fn) {
  try { await fn(); console.log(`ok   ${name}`); } catch (e) { failures++; console.log(`FAIL ${name}: ${e.stack}`); }
}
async function raw(path, body, headers = {}) {
  const r = await fetch(base + path, { method: 'POST', body,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...headers } });
  return { status: r.status, json: await r.json().catch(() => null) };
}
function isError(r, status, param) {
  assert.equal(r.status, status);
  assert.equal(typeof r.json?.error?.message, 'string');
  assert.ok(r.json.error.message.length > 0);
  if (param !== undefined) assert.equal(r.json.error.param, param);
}

await test('models lists the model', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['tiny']);
});

let whole;
await test('plain chat: reasoning apart, usage, length', async () => {
  whole = await client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 24, temperature: 0 });
  const c = whole.choices[0];
  assert.equal(c.message.role, 'assistant');
  assert.equal(typeof c.message.content, 'string');
  assert.equal(typeof c.message.reasoning_content, 'string');
  assert.equal(whole.usage.completion_tokens, 24);
  assert.equal(c.finish_reason, 'length');
  assert.ok(whole.usage.prompt_tokens > 4);
  // R1's generation prompt opens <think>: the first text the model writes is reasoning.
  assert.ok(c.message.reasoning_content.length > 0);
  assert.ok(!c.message.reasoning_content.includes('<think>'));
});

await test('streaming chat equals the whole answer at temperature 0', async () => {
  const stream = await client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 24,
    temperature: 0, stream: true, stream_options: { include_usage: true } });
  let reasoning = '', content = '', finish = null, usage = null, chunks = 0;
  for await (const ch of stream) {
    chunks++;
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      reasoning += c.delta.reasoning_content ?? '';
      content += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks > 3);
  assert.equal(finish, 'length');
  assert.equal(reasoning, whole.choices[0].message.reasoning_content);
  assert.equal(content, whole.choices[0].message.content);
  assert.deepEqual(usage, whole.usage);
});

await test('system prompt folded by default, kept with system_as_is', async () => {
  const folded = await client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 1 });
  const asIs = await client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 1, system_as_is: true });
  assert.notEqual(folded.usage.prompt_tokens, asIs.usage.prompt_tokens);
});

await test('completions', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon', max_tokens: 5, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.usage.completion_tokens, 5);
  assert.equal(typeof r.choices[0].text, 'string');
});

await test('concurrent requests all complete, same text as sequential at temperature 0', async () => {
  const one = (i) => client.chat.completions.create({ model: 'tiny', max_tokens: 12, temperature: 0,
    messages: [{ role: 'user', content: `Question ${i % 3}` }] });
  const seq = [];
  for (let i = 0; i < 3; i++) seq.push(await one(i));
  const par = await Promise.all(Array.from({ length: 6 }, (_, i) => one(i)));
  par.forEach((r, i) => assert.equal(r.choices[0].message.reasoning_content + r.choices[0].message.content,
    seq[i % 3].choices[0].message.reasoning_content + seq[i % 3].choices[0].message.content));
});

await test('auth: 401 without or with a wrong key', async () => {
  const bad = new OpenAI({ apiKey: 'wrong', baseURL: `${base}/v1`, maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e.status === 401);
  const r = await fetch(`${base}/v1/models`);
  assert.equal(r.status, 401);
  assert.equal((await r.json()).error.type, 'authentication_error');
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

await test('bad requests are 4xx in OpenAI format and the server keeps serving', async () => {
  isError(await raw('/v1/chat/completions', '{"messages": [{"role": "us'), 400);
  isError(await raw('/v1/chat/completions', 'null'), 400);
  isError(await raw('/v1/chat/completions', '{"messages": "hi"}'), 400, 'messages');
  isError(await raw('/v1/chat/completions', JSON.stringify({ messages: msgs, max_tokens: 'ten' })), 400, 'max_tokens');
  isError(await raw('/v1/chat/completions', JSON.stringify({ messages: msgs, max_tokens: 1e15 })), 400, 'max_tokens');
  isError(await raw('/v1/chat/completions', JSON.stringify({ messages: msgs, temperature: 'hot' })), 400, 'temperature');
  isError(await raw('/v1/chat/completions', JSON.stringify({ messages: [{ role: 'wizard', content: 'x' }] })), 400, 'messages[0].role');
  isError(await raw('/v1/completions', JSON.stringify({ prompt: 'x'.repeat(70000) })), 413);
  isError(await raw('/v1/completions', JSON.stringify({ prompt: 'word '.repeat(6000) })), 400, 'prompt');
  isError(await raw('/v1/nothing', '{}'), 404);
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 100000 }),
    (e) => e.status === 400);
  const ok = await client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 2 });
  assert.equal(ok.usage.completion_tokens, 2);
});

async function metric(name, at = base) {
  const text = await (await fetch(`${at}/metrics`, { headers: { Authorization: `Bearer ${KEY}` } })).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `no ${name} in /metrics`);
  return Number(m[1]);
}

await test('a client that disconnects cancels its generation and frees its slot', async () => {
  const before = await metric('strata_cancelled_total');
  const generatedBefore = await metric('strata_generated_tokens_total');
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 4000,
    stream: true, ignore_eos: true }, { signal: ac.signal });
  let n = 0;
  // The client may end the iteration quietly or throw an abort error: either way it is gone.
  try { for await (const _ of stream) { if (++n === 3) ac.abort(); } } catch (e) { /* aborted */ }
  assert.ok(n >= 3);
  let cancelled = before;
  for (let i = 0; i < 100 && cancelled === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    cancelled = await metric('strata_cancelled_total');
  }
  assert.equal(cancelled, before + 1);
  assert.ok(await metric('strata_generated_tokens_total') - generatedBefore < 4000);
  assert.equal(await metric('strata_active_requests'), 0);
});

await test('a non-streaming client that disconnects cancels its generation too', async () => {
  const before = await metric('strata_cancelled_total');
  const generatedBefore = await metric('strata_generated_tokens_total');
  const ac = new AbortController();
  const live = client.chat.completions.create({ model: 'tiny', messages: msgs, max_tokens: 4000,
    ignore_eos: true }, { signal: ac.signal });
  // Abort once the generation is under way.
  for (let i = 0; i < 100 && await metric('strata_generated_tokens_total') === generatedBefore; i++)
    await new Promise((r) => setTimeout(r, 10));
  ac.abort();
  await assert.rejects(live);
  let cancelled = before;
  for (let i = 0; i < 100 && cancelled === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    cancelled = await metric('strata_cancelled_total');
  }
  assert.equal(cancelled, before + 1);
  assert.ok(await metric('strata_generated_tokens_total') - generatedBefore < 4000);
  assert.equal(await metric('strata_active_requests'), 0);
});

await test('metrics count requests and tokens', async () => {
  assert.ok(await metric('strata_requests_total') > 10);
  assert.ok(await metric('strata_generated_tokens_total') > 50);
  assert.equal(await metric('strata_queue_depth'), 0);
});

await test('SIGTERM finishes a live request, then the server exits', async () => {
  const req = { model: 'tiny', messages: msgs, max_tokens: 64, temperature: 0, ignore_eos: true };
  const expected = await client.chat.completions.create(req);
  const live = client.chat.completions.create(req);
  await new Promise((r) => setTimeout(r, 30));
  const exited = new Promise((r) => server.on('exit', (code, sig) => r({ code, sig })));
  server.kill('SIGTERM');
  const r = await live;
  assert.deepEqual(r.choices, expected.choices);
  assert.equal(r.usage.completion_tokens, 64);
  const { code } = await exited;
  assert.equal(code, 0);
});

server.kill('SIGKILL');

// The shipped default model (no -m): a trained reasoner, so the split is checked on real text —
// its digit-by-digit working in reasoning_content, the answer alone in content. 16 slots: its
// requests are decoded together (continuous batching).
const tiny = await startServer(['serve', '-t', '1', '--parallel', '16', '--request-timeout', '2']);
const tinyMetric = (name) => metric(name, `http://127.0.0.1:${tiny.port}`);
const tinyClient = new OpenAI({ apiKey: 'none', baseURL: `http://127.0.0.1:${tiny.port}/v1`,
  maxRetries: 0, timeout: 60000 });
await test('a client dribbling its request (slowloris) is dropped after --request-timeout', async () => {
  const t0 = Date.now();
  const sock = connect(tiny.port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n');
  // A header byte every 300 ms: each read is quick, the request never completes.
  const drip = setInterval(() => { if (!sock.destroyed) sock.write('X'); }, 300);
  sock.on('error', () => {});
  await new Promise((r) => sock.on('close', r));
  clearInterval(drip);
  const s = (Date.now() - t0) / 1000;
  assert.ok(s >= 1.5 && s < 10, `dropped after ${s} s, expected about 2`);
  assert.ok(await tinyMetric('strata_slow_clients_dropped_total') >= 1);
  const r = await tinyClient.chat.completions.create({ model: 'strata-tiny-r1', temperature: 0,
    max_tokens: 8, messages: [{ role: 'user', content: 'What is 1+2?' }] });
  assert.equal(r.choices.length, 1);
});

await test('the default model reasons apart from its answer, whole and streamed', async () => {
  const req = { model: 'strata-tiny-r1', temperature: 0, max_tokens: 200,
    messages: [{ role: 'user', content: 'What is 347+589?' }] };
  const whole = await tinyClient.chat.completions.create(req);
  const m = whole.choices[0].message;
  assert.equal(m.content.trim(), '936');
  assert.match(m.reasoning_content, /so far 936/);
  assert.doesNotMatch(m.content, /think|so far/);
  let reasoning = '', content = '';
  for await (const chunk of await tinyClient.chat.completions.create({ ...req, stream: true })) {
    reasoning += chunk.choices[0]?.delta?.reasoning_content ?? '';
    content += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(content, m.content);
  assert.equal(reasoning, m.reasoning_content);
});
await test('16 concurrent streaming chats give the texts of 16 sequential ones (batched decode)', async () => {
  const req = (i) => ({ model: 'strata-tiny-r1', temperature: 0, max_tokens: 48, ignore_eos: true,
    messages: [{ role: 'user', content: `What is ${101 + 37 * i}+${250 + 59 * i}?` }] });
  const seq = [];
  for (let i = 0; i < 16; i++) {
    const m = (await tinyClient.chat.completions.create(req(i))).choices[0].message;
    seq.push({ reasoning: m.reasoning_content, content: m.content });
  }
  const stepsBefore = await tinyMetric('strata_batch_rows_count');
  const rowsBefore = await tinyMetric('strata_batch_rows_sum');
  const streamed = async (i) => {
    let reasoning = '', content = '', finish = null;
    for await (const chunk of await tinyClient.chat.completions.create({ ...req(i), stream: true })) {
      reasoning += chunk.choices[0]?.delta?.reasoning_content ?? '';
      content += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'length');
    return { reasoning, content };
  };
  const par = await Promise.all(Array.from({ length: 16 }, (_, i) => streamed(i)));
  par.forEach((p, i) => assert.deepEqual(p, seq[i], `stream ${i}`));
  // 16 × 48 tokens went through fewer steps than one per token: the decodes were batched.
  const steps = await tinyMetric('strata_batch_rows_count') - stepsBefore;
  const rows = await tinyMetric('strata_batch_rows_sum') - rowsBefore;
  assert.ok(rows >= 16 * 47 && steps < rows / 4, `${rows} rows in ${steps} steps`);
});
tiny.proc.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
console.log(failures ? `${failures} failed` : 'all passed');
process.exit(failures ? 1 : 0);
