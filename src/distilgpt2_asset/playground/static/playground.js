// The playground page: an editor, three streamed suggestions, the parameters and the exact request.
// No framework and no build step. Requests go to this page's own server (/api/score), which
// forwards them to the scoring URL and adds the endpoint's key; the page never sees the key.

const SCORE_PATH = "/api/score";
// This start's token, from the fragment of the URL the playground printed: every request carries it.
const TOKEN = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const MAX_SEED = 2 ** 32 - 1;

// The parameters the page offers, in the order it shows them. `optional` ones are sent only when
// filled in (the server's defaults apply otherwise); the others start from the model card's values.
const PARAMS = [
  { name: "temperature", kind: "number", step: "0.05", min: "0", hint: "Above 0 when sampling; lower is more predictable." },
  { name: "top_p", kind: "number", step: "0.05", min: "0", max: "1", hint: "Nucleus sampling: only the most likely tokens whose probabilities add up to top_p (0 to 1)." },
  { name: "max_new_tokens", kind: "integer", step: "1", min: "1", hint: "Tokens to generate for each suggestion." },
  { name: "do_sample", kind: "boolean", hint: "Off: greedy decoding, and the three suggestions are the same." },
  { name: "truncate", kind: "boolean", hint: "On: a text too long for the model's context keeps its last tokens. Off: it is refused." },
  { name: "top_k", kind: "integer", step: "1", min: "1", optional: true, placeholder: "default", hint: "Sample among the k most likely tokens. Empty: the model's default." },
  { name: "repetition_penalty", kind: "number", step: "0.05", min: "0", optional: true, placeholder: "default", hint: "Above 1 discourages repeating tokens. Empty: the model's default." },
  { name: "stop", kind: "stops", optional: true, placeholder: "none", hint: "Up to 4 strings, one per line (\\n is a newline): a suggestion ends before the first one." },
  { name: "seed", kind: "integer", step: "1", min: "0", optional: true, placeholder: "random", hint: "Empty: new texts each time. A number: the same texts again (the suggestions use seed, seed + 1, seed + 2)." },
];
const FINISH_REASONS = {
  length: "reached max_new_tokens",
  eos: "the model ended the text",
  stop: "met a stop string",
};

const $ = (id) => document.getElementById(id);
const editor = $("editor");
const suggestButton = $("suggest");
const stopButton = $("stop");
const list = $("suggestions");

let config = null; // GET /api/config
let run = null; // the suggestions being made or last made
let lastPlan = null; // what Retry sends again
let tabLeavesEditor = false; // set by Esc: the next Tab moves focus instead of asking

// Parameters ------------------------------------------------------------------------------------

function buildParamFields(form, defaults) {
  for (const param of PARAMS) {
    const id = `param-${param.name}`;
    const field = document.createElement("div");
    field.className = `field field-${param.kind}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = param.name;
    const control = document.createElement(param.kind === "stops" ? "textarea" : "input");
    control.id = id;
    control.name = param.name;
    if (param.kind === "boolean") {
      control.type = "checkbox";
      control.checked = Boolean(defaults[param.name]);
    } else if (param.kind === "stops") {
      control.rows = 2;
      control.spellcheck = false;
    } else {
      control.type = "number";
      control.step = param.step;
      control.min = param.min;
      if (param.max) control.max = param.max;
      control.inputMode = param.kind === "integer" ? "numeric" : "decimal";
      if (defaults[param.name] !== undefined) control.value = String(defaults[param.name]);
    }
    if (param.placeholder) control.placeholder = param.placeholder;
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.id = `${id}-hint`;
    hint.textContent = param.hint;
    const error = document.createElement("p");
    error.className = "field-error";
    error.id = `${id}-error`;
    error.hidden = true;
    control.setAttribute("aria-describedby", `${hint.id} ${error.id}`);
    if (param.kind === "boolean") field.append(control, label, hint, error);
    else field.append(label, control, hint, error);
    form.append(field);
  }
}

function unescapeStop(line) {
  return line.replace(/\\(n|t|\\)/g, (_, c) => ({ n: "\n", t: "\t", "\\": "\\" })[c]);
}

// The params as the page would send them now, or the problems that stop it from sending.
function readParams() {
  const params = {};
  const problems = {};
  for (const param of PARAMS) {
    const control = $(`param-${param.name}`);
    if (param.kind === "boolean") {
      params[param.name] = control.checked;
    } else if (param.kind === "stops") {
      const stops = control.value.split("\n").filter((line) => line !== "").map(unescapeStop);
      if (stops.length) params.stop = stops;
    } else if (control.validity.badInput) {
      problems[param.name] = `${param.name} must be a number`;
    } else if (control.value.trim() === "") {
      if (!param.optional) problems[param.name] = `${param.name} needs a value`;
    } else {
      params[param.name] = Number(control.value);
    }
  }
  params.return_full_text = false; // suggestions continue the text: the prompt is not repeated
  params.stream = true;
  return { params, problems };
}

// The requests for three suggestions of one prompt: one request with the prompt three times, or,
// with a seed, one request per seed (one seed on three copies of a prompt gives one text three times).
function planFor(prompt, params) {
  const count = config.suggestions;
  const slots = [...Array(count).keys()];
  if (params.seed === undefined || !params.do_sample) {
    return [{ body: { input_data: slots.map(() => prompt), params }, slots }];
  }
  return slots.map((slot) => ({
    body: { input_data: [prompt], params: { ...params, seed: (params.seed + slot) % (MAX_SEED + 1) } },
    slots: [slot],
  }));
}

function textBeforeCursor() {
  return editor.value.slice(0, editor.selectionStart);
}

// The request preview -------------------------------------------------------------------------------

let previewQueued = false;
function queuePreview() {
  if (previewQueued || !config) return;
  previewQueued = true;
  requestAnimationFrame(() => {
    previewQueued = false;
    renderPreview();
  });
}

function renderPreview() {
  const { params, problems } = readParams();
  const preview = $("preview");
  preview.replaceChildren();
  if (Object.keys(problems).length) {
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = `Not sendable yet: ${Object.values(problems).join("; ")}.`;
    preview.append(note);
    return;
  }
  const plan = planFor(textBeforeCursor(), params);
  plan.forEach((part, number) => {
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    const which = part.slots.length > 1 ? `suggestions 1–${part.slots.length}` : `suggestion ${part.slots[0] + 1}`;
    caption.textContent = `POST ${config.score_url} (${which})`;
    const pre = document.createElement("pre");
    pre.className = "request-json";
    pre.tabIndex = 0;
    pre.setAttribute("aria-label", `Request ${number + 1} of ${plan.length}, JSON`);
    pre.textContent = JSON.stringify(part.body, null, 2);
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy";
    copy.textContent = plan.length > 1 ? `Copy request ${number + 1}` : "Copy JSON";
    copy.addEventListener("click", () => copyText(pre.textContent, copy));
    caption.append(" ", copy);
    figure.append(caption, pre);
    preview.append(figure);
  });
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    say("Copied the request.");
  } catch {
    say("The browser refused to copy; select the text instead.");
  }
  button.focus();
}

// Messages: the status line, the problem box, errors beside their field -----------------------------

function say(message) {
  $("status").textContent = message;
}

function showProblem(message, canRetry) {
  $("problem-text").textContent = message;
  $("retry").hidden = !canRetry;
  $("problem").hidden = false;
}

function controlFor(field) {
  if (!field) return null;
  if (/^(input_data|inputs)\b/.test(field)) return editor;
  const match = /^params\.([a-z_]+)/.exec(field);
  return match ? $(`param-${match[1]}`) : null;
}

function showFieldError(control, message) {
  const error = $(`${control.id}-error`);
  error.textContent = message;
  error.hidden = false;
  control.setAttribute("aria-invalid", "true");
}

function clearFieldError(control) {
  const error = $(`${control.id}-error`);
  if (!error) return;
  error.textContent = "";
  error.hidden = true;
  control.removeAttribute("aria-invalid");
}

function clearMessages() {
  $("problem").hidden = true;
  for (const control of [editor, ...PARAMS.map((p) => $(`param-${p.name}`))]) clearFieldError(control);
}

// Suggestions ------------------------------------------------------------------------------------------

function newSlot(index, prompt) {
  const item = $("suggestion-template").content.firstElementChild.cloneNode(true);
  item.dataset.index = String(index);
  item.querySelector(".suggestion-title").textContent = `Suggestion ${index + 1}`;
  const tail = prompt.slice(-40);
  item.querySelector(".prompt-tail").textContent = tail ? (prompt.length > tail.length ? "…" : "") + tail : "";
  const button = item.querySelector(".suggestion-insert");
  const meta = item.querySelector(".suggestion-meta");
  meta.id = `suggestion-${index}-meta`;
  button.setAttribute("aria-describedby", meta.id);
  const slot = { index, item, button, meta, textNode: document.createTextNode(""), text: "", state: "waiting" };
  item.querySelector(".suggestion-text").append(slot.textNode);
  button.addEventListener("click", () => insert(slot));
  setState(slot, "waiting", "waiting…");
  return slot;
}

function setState(slot, state, meta) {
  slot.state = state;
  slot.item.dataset.state = state;
  slot.meta.textContent = meta;
  slot.button.disabled = slot.text === "";
}

function append(slot, text) {
  if (!text) return;
  slot.text += text;
  slot.textNode.appendData(text);
  if (slot.state === "waiting") setState(slot, "streaming", "streaming…");
  slot.button.disabled = false;
}

function finish(slot, event) {
  const usage = event.usage || {};
  const parts = [
    `${event.finish_reason}: ${FINISH_REASONS[event.finish_reason] || "finished"}`,
    `${usage.completion_tokens} new tokens after ${usage.prompt_tokens} prompt tokens`,
  ];
  if (event.seed !== undefined) parts.push(`seed ${event.seed}`);
  setState(slot, "done", parts.join(" · "));
}

function endUnfinished(state, meta) {
  for (const slot of run.slots) if (slot.state === "waiting" || slot.state === "streaming") setState(slot, state, meta);
}

// A 4xx/5xx answer, or an error event after the answer began: its message, field and Retry-After.
class RequestRefused extends Error {
  constructor(status, body, retryAfter) {
    super(body.error || `HTTP ${status}`);
    this.status = status;
    this.field = body.field;
    this.retryAfter = retryAfter;
  }
}
class ConnectionDropped extends Error {}

// One streamed request: its events go to their slots until `data: [DONE]`.
async function stream(part, current) {
  let response;
  try {
    response = await fetch(SCORE_PATH, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Playground-Token": TOKEN },
      body: JSON.stringify(part.body),
      signal: current.abort.signal,
    });
  } catch (error) {
    if (current.abort.signal.aborted) return;
    throw new ConnectionDropped("The playground server cannot be reached (is it still running?).");
  }
  if (response.ok && !(response.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
    whole(await response.json().catch(() => null), part, current);
    return;
  }
  if (!response.ok) {
    let body;
    try {
      body = await response.json();
    } catch {
      body = { error: `HTTP ${response.status} ${response.statusText}`.trim() };
    }
    throw new RequestRefused(response.status, body, response.headers.get("Retry-After"));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let done = false;
  try {
    while (!done) {
      const { value, done: closed } = await reader.read();
      if (closed) break;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while (!done && (cut = buffer.indexOf("\n\n")) >= 0) {
        done = onEvent(buffer.slice(0, cut), part, current);
        buffer = buffer.slice(cut + 2);
      }
    }
  } catch (error) {
    if (current.abort.signal.aborted || error instanceof RequestRefused) throw error;
    throw new ConnectionDropped("The connection dropped while the suggestions were being made.");
  }
  if (!done && !current.abort.signal.aborted) {
    throw new ConnectionDropped("The connection closed before the answer ended.");
  }
}

// An endpoint that does not stream (e.g. the no-code MLflow deployment) answers all texts at once.
function whole(answer, part, current) {
  if (!Array.isArray(answer)) throw new Error("the endpoint answered neither a stream nor a list of texts");
  answer.forEach((item, index) => {
    const slot = current.slots[part.slots[index]];
    if (!slot) return;
    append(slot, typeof item === "string" ? item : item.generated_text || "");
    setState(slot, "done", "not streamed: the endpoint answered all at once");
  });
}

// One server-sent event; true at `data: [DONE]`.
function onEvent(block, part, current) {
  const data = block
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).replace(/^ /, ""))
    .join("\n");
  if (!data) return false;
  if (data === "[DONE]") return true;
  const event = JSON.parse(data);
  if (event.error) throw new RequestRefused(200, event, null); // e.g. the deadline, after the answer began
  const slot = current.slots[part.slots[event.index]];
  if (!slot || current !== run) return false;
  append(slot, event.text || "");
  if (event.finish_reason) finish(slot, event);
  return false;
}

// Asking, stopping, retrying, inserting --------------------------------------------------------------

function suggest() {
  if (!config) return;
  const { params, problems } = readParams();
  clearMessages();
  const names = Object.keys(problems);
  if (names.length) {
    for (const name of names) showFieldError($(`param-${name}`), problems[name]);
    say(`Fix ${names.join(", ")} first.`);
    return;
  }
  const prompt = textBeforeCursor();
  start({ prompt, cursor: editor.selectionStart, plan: planFor(prompt, params) });
}

function start(plan) {
  if (run) run.abort.abort();
  lastPlan = plan;
  const current = {
    ...plan,
    abort: new AbortController(),
    slots: [...Array(config.suggestions).keys()].map((index) => newSlot(index, plan.prompt)),
  };
  run = current;
  list.replaceChildren(...current.slots.map((slot) => slot.item));
  stopButton.disabled = false;
  say(`Asking for ${current.slots.length} suggestions…`);
  Promise.allSettled(plan.plan.map((part) => stream(part, current))).then((results) => settle(current, results));
}

function settle(current, results) {
  if (current !== run) return; // a newer request replaced this one
  stopButton.disabled = true;
  if (current.abort.signal.aborted) return; // stopped: stop() said so
  const failure = results.find((result) => result.status === "rejected");
  if (!failure) {
    say(`${current.slots.length} suggestions ready. Click one to insert it (keyboard: Esc, then Tab to reach them).`);
    return;
  }
  const error = failure.reason;
  if (error instanceof ConnectionDropped) {
    endUnfinished("dropped", "cut off: the connection dropped");
    showProblem(`${error.message} Retry asks again for the same text.`, true);
    say("The connection dropped.");
  } else if (error instanceof RequestRefused) {
    refused(error);
  } else {
    endUnfinished("failed", "not made");
    showProblem(`Something went wrong: ${error.message}`, true);
    say("The request failed.");
  }
}

function refused(error) {
  endUnfinished("failed", "not made: the request was refused");
  if (run.slots.every((slot) => slot.text === "")) list.replaceChildren(); // nothing to show but the message
  const control = controlFor(error.field);
  const status = error.status === 200 ? "the server stopped the answer" : `HTTP ${error.status}`;
  if (control) {
    showFieldError(control, error.message);
    say(`The server refused ${error.field} (${status}); the message is beside it.`);
    control.focus();
    return;
  }
  const sentence = /[.!?]$/.test(error.message) ? error.message : `${error.message}.`;
  const wait = error.retryAfter ? ` Retry after ${error.retryAfter} s.` : "";
  const canRetry = error.status === 200 || error.status === 429 || error.status >= 500;
  showProblem(`${status}: ${sentence}${wait}`, canRetry);
  say(`The request failed (${status}).`);
}

function stop() {
  if (!run || stopButton.disabled) return;
  run.abort.abort();
  stopButton.disabled = true;
  endUnfinished("stopped", "stopped before its end");
  say("Stopped.");
}

function insert(slot) {
  const current = run;
  if (!slot.text || !current) return;
  if (!stopButton.disabled) stop();
  // The suggestion continues the text it was asked for: insert it there if that text is unchanged.
  const at = editor.value.slice(0, current.cursor) === current.prompt ? current.cursor : editor.selectionStart;
  editor.setRangeText(slot.text, at, at, "end");
  run = null;
  list.replaceChildren();
  editor.focus();
  say(`Inserted suggestion ${slot.index + 1}.`);
  queuePreview();
}

function onEditorKey(event) {
  const plainTab = event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey;
  if (plainTab && !tabLeavesEditor) {
    event.preventDefault();
    suggest();
  } else if (event.key === "Escape") {
    stop();
    tabLeavesEditor = true;
    say("Tab now leaves the editor.");
  } else if (event.key !== "Shift") {
    tabLeavesEditor = false;
  }
}

// Start-up ------------------------------------------------------------------------------------------------

async function load() {
  try {
    const response = await fetch("/api/config");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = await response.json();
  } catch (error) {
    showProblem(`The playground server does not answer (${error.message}); start it again and reload the page.`, false);
    return;
  }
  $("target-url").textContent = config.score_url;
  $("target-key").textContent = config.key_env ? `, with the key from $${config.key_env} (added by the playground server)` : "";
  const form = $("params");
  buildParamFields(form, config.defaults);
  form.addEventListener("input", (event) => {
    clearFieldError(event.target);
    queuePreview();
  });
  form.addEventListener("submit", (event) => event.preventDefault());
  editor.addEventListener("keydown", onEditorKey);
  editor.addEventListener("input", () => {
    clearFieldError(editor);
    queuePreview();
  });
  document.addEventListener("selectionchange", () => {
    if (document.activeElement === editor) queuePreview();
  });
  suggestButton.addEventListener("click", () => {
    suggest();
    editor.focus();
  });
  stopButton.addEventListener("click", stop);
  $("retry").addEventListener("click", () => {
    if (!lastPlan) return;
    clearMessages();
    start(lastPlan);
  });
  document.body.dataset.ready = "true";
  renderPreview();
}

load();
