"""``GET /ui``: a page to try the served model from a browser, whatever its task.

One static page, no framework and nothing fetched from outside: it reads ``/info`` for the task
and its route, shows the matching input (a prompt, a text, or an image to upload), posts to the
route the API clients use, and shows the answer (the image itself for text-to-image), the latency
the browser saw, and the server's own timings. A refusal shows the server's message and the field
it names, as an API client would get them.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hwai model server</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:52rem;padding:0 1rem;color:#222}
h1{font-size:1.3rem}label{display:block;margin:.6rem 0 .2rem;font-weight:600}
textarea,input[type=number]{width:100%;box-sizing:border-box;font:inherit;padding:.4rem}
button{margin-top:.8rem;font:inherit;padding:.4rem 1.2rem}
#error{color:#b00020;white-space:pre-wrap}#latency{font-weight:600}
pre{background:#f4f4f4;padding:.6rem;overflow:auto;max-height:24rem}img{max-width:100%;image-rendering:pixelated}
.hidden{display:none}
</style></head>
<body>
<h1>hwai model server: <span id="task">loading</span></h1>
<p id="model"></p>
<form id="form">
  <div id="text-input" class="hidden"><label for="prompt" id="prompt-label">Prompt</label>
    <textarea id="prompt" rows="3"></textarea></div>
  <div id="steps-input" class="hidden"><label for="steps">Steps (empty: the server's default)</label>
    <input id="steps" type="number" min="1"></div>
  <div id="tokens-input" class="hidden"><label for="tokens">New tokens</label>
    <input id="tokens" type="number" min="1" value="32"></div>
  <div id="file-input" class="hidden"><label for="file">Image</label><input id="file" type="file" accept="image/*"></div>
  <button id="run" type="submit" disabled>Run</button>
</form>
<p>Latency: <span id="latency">-</span></p>
<p id="error"></p>
<img id="image" class="hidden" alt="generated image">
<pre id="result"></pre>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let info = null;
const IMAGE_TASKS = ["image-classification", "object-detection"];

function show(id, on) { $(id).classList.toggle("hidden", !on); }

function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

async function body() {
  const task = info.task;
  if (IMAGE_TASKS.includes(task)) {
    const file = $("file").files[0];
    if (!file) throw new Error("choose an image first");
    return { image: await readFile(file) };
  }
  const text = $("prompt").value;
  if (task === "sentiment") return { text };
  if (task === "sleep") return { payload: text };
  if (task === "text-generation") return { prompt: text, max_new_tokens: Number($("tokens").value) };
  const b = { prompt: text };
  if ($("steps").value !== "") b.num_inference_steps = Number($("steps").value);
  return b;
}

async function run(ev) {
  ev.preventDefault();
  $("error").textContent = "";
  $("result").textContent = "";
  $("latency").textContent = "running";
  show("image", false);
  $("run").disabled = true;
  try {
    const payload = await body();
    const t0 = performance.now();
    const r = await fetch(info.route, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(payload) });
    const answer = await r.json().catch(() => ({ error: "the answer was not JSON" }));
    $("latency").textContent = `${Math.round(performance.now() - t0)} ms`;
    if (!r.ok) {
      $("error").textContent = `HTTP ${r.status}: ${answer.error || "error"}` + (answer.field ? ` (field: ${answer.field})` : "");
      return;
    }
    if (answer.image) {
      $("image").src = `data:image/${answer.format || "png"};base64,${answer.image}`;
      show("image", true);
      answer.image = `<${answer.image.length} base64 characters, shown above>`;
    }
    $("result").textContent = JSON.stringify(answer, null, 2);
  } catch (e) {
    $("latency").textContent = "-";
    $("error").textContent = String(e.message || e);
  } finally {
    $("run").disabled = false;
  }
}

async function start() {
  try {
    const r = await fetch("/info");
    info = await r.json();
  } catch (e) {
    $("error").textContent = `cannot read /info: ${e}`;
    return;
  }
  $("task").textContent = info.task;
  $("model").textContent = `${info.unit} (${info.backend}), route ${info.route}, ${info.ready ? "ready" : "not ready yet"}`;
  const image = IMAGE_TASKS.includes(info.task);
  show("file-input", image);
  show("text-input", !image);
  show("steps-input", info.task === "text-to-image");
  show("tokens-input", info.task === "text-generation");
  $("prompt-label").textContent = info.task === "sentiment" ? "Text" : info.task === "sleep" ? "Payload" : "Prompt";
  $("run").disabled = false;
  $("form").addEventListener("submit", run);
}
start();
</script>
</body></html>
"""
