// DSCQS client: one trial at a time; every answer is retried until the server has committed it.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { observer: null, trial: null, scores: { A: null, B: null }, grey: 3 };

function show(name) {
  for (const id of ["start", "grey", "trial", "done"]) $(id).hidden = id !== name;
  document.body.dataset.state = name;
}

async function api(method, url, body) {
  const r = await fetch(url, { method, headers: { "Content-Type": "application/json" },
                               body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  return { status: r.status, data };
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// Retries while the server cannot be reached (killed, restarting): the request is idempotent.
async function persistent(method, url, body) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await api(method, url, body);
      if (r.status < 500) { $("msg").textContent = ""; return r; }
    } catch (e) { /* network error: retry */ }
    $("msg").textContent = "Connection lost, retrying... (your answers are kept)";
    await sleep(Math.min(2000, 250 * (attempt + 1)));
  }
}

// ---- scales: continuous 0-100, five equal intervals (Excellent .. Bad), click, drag or arrow keys
function setScale(side, value) {
  const v = Math.max(0, Math.min(100, Math.round(value * 10) / 10));
  state.scores[side] = v;
  const el = $("scale" + side);
  let mark = el.querySelector(".mark");
  if (!mark) { mark = document.createElement("div"); mark.className = "mark"; el.appendChild(mark); }
  mark.style.top = (100 - v) + "%";
  el.setAttribute("aria-valuenow", String(v));
  el.dataset.value = String(v);
  $("submit").disabled = state.scores.A === null || state.scores.B === null;
}

function initScale(side) {
  const el = $("scale" + side);
  for (let i = 1; i < 5; i++) {
    const t = document.createElement("div"); t.className = "tick"; t.style.top = (i * 20) + "%"; el.appendChild(t);
  }
  const fromEvent = (ev) => {
    const r = el.getBoundingClientRect();
    setScale(side, 100 * (1 - (ev.clientY - r.top) / r.height));
  };
  el.addEventListener("pointerdown", (ev) => { el.setPointerCapture(ev.pointerId); fromEvent(ev); });
  el.addEventListener("pointermove", (ev) => { if (el.hasPointerCapture(ev.pointerId)) fromEvent(ev); });
  el.addEventListener("keydown", (ev) => {
    const step = ev.shiftKey ? 10 : 1, cur = state.scores[side] === null ? 50 : state.scores[side];
    if (ev.key === "ArrowUp") { setScale(side, cur + step); ev.preventDefault(); }
    if (ev.key === "ArrowDown") { setScale(side, cur - step); ev.preventDefault(); }
  });
}

function clearScales() {
  for (const side of ["A", "B"]) {
    state.scores[side] = null;
    const mark = $("scale" + side).querySelector(".mark");
    if (mark) mark.remove();
    delete $("scale" + side).dataset.value;
  }
  $("submit").disabled = true;
}

// ---- native resolution: one image pixel on one device pixel, never scaled to fit
function placeNative(img, w, h) {
  const dpr = window.devicePixelRatio || 1;
  img.width = w; img.height = h;
  img.style.width = (w / dpr) + "px"; img.style.height = (h / dpr) + "px";
}

function checkFits() {
  const t = state.trial;
  if (!t) return;
  const dpr = window.devicePixelRatio || 1;
  const needW = 2 * t.width / dpr + 16 + 24, needH = t.height / dpr;
  const small = window.innerWidth < needW || window.innerHeight < needH;
  $("toosmall").hidden = !small;
  $("toosmall").textContent = small ? `The window (${window.innerWidth}x${window.innerHeight}) is too small to show both ` +
    `images at native resolution (${Math.ceil(needW)}x${Math.ceil(needH)} needed): enlarge it or set the zoom to 100 %. ` +
    "Images are never scaled." : "";
}
window.addEventListener("resize", checkFits);

function loadImage(img, url) {
  return new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; img.src = url; });
}

async function nextTrial() {
  const r = await persistent("GET", `/api/observers/${encodeURIComponent(state.observer)}/next`);
  if (r.status !== 200) { showStartError(r.data && r.data.error); return; }
  if (r.data.done) { show("done"); return; }
  const t = r.data;
  show("grey");  // adaptation: mid-grey, while the pair loads
  const waited = sleep(state.grey * 1000);
  clearScales();
  state.trial = t;
  placeNative($("imgA"), t.width, t.height); placeNative($("imgB"), t.width, t.height);
  for (let attempt = 0; ; attempt++) {
    try { await Promise.all([loadImage($("imgA"), t.a + "?r=" + attempt), loadImage($("imgB"), t.b + "?r=" + attempt)]); break; }
    catch (e) { await sleep(500); }
  }
  await waited;
  $("status").textContent = (t.training ? "Training " : "Trial ") + t.position + " / " + t.of;
  $("trial").dataset.trialId = t.trial_id;
  show("trial");
  checkFits();
}

async function submit() {
  if (state.scores.A === null || state.scores.B === null || !state.trial) return;
  $("submit").disabled = true;  // a double click sends nothing twice; the server is idempotent anyway
  const t = state.trial;
  state.trial = null;
  const r = await persistent("POST", `/api/trials/${encodeURIComponent(t.trial_id)}`,
                             { score_a: state.scores.A, score_b: state.scores.B });
  if (r.status !== 200 && r.status !== 409) {  // 409: answered before (another tab); the first answer stands
    $("msg").textContent = (r.data && r.data.error) || "the answer was refused";
    state.trial = t; $("submit").disabled = false;
    return;
  }
  await nextTrial();
}

function showStartError(text) {
  show("start");
  $("startmsg").hidden = !text;
  $("startmsg").textContent = text || "";
}

async function start(observer) {
  const r = await persistent("POST", "/api/observers", { observer });
  if (r.status !== 200) { showStartError(r.data && r.data.error); return; }
  state.observer = observer;
  localStorage.setItem("openjai-observer", observer);  // a reload resumes this observer
  await nextTrial();
}

async function main() {
  initScale("A"); initScale("B");
  $("submit").addEventListener("click", submit);
  $("go").addEventListener("click", () => start($("observer").value.trim()));
  $("another").addEventListener("click", () => {  // the lab's next observer on this browser starts afresh
    localStorage.removeItem("openjai-observer");
    state.observer = null; $("observer").value = ""; $("startmsg").hidden = true;
    history.replaceState(null, "", "/");
    show("start");
  });
  $("observer").addEventListener("keydown", (ev) => { if (ev.key === "Enter") start($("observer").value.trim()); });
  const info = await persistent("GET", "/api/session");
  if (info.status !== 200) { showStartError(info.data && info.data.error); return; }
  state.grey = info.data.grey_seconds;
  $("title").textContent = info.data.title;
  document.title = info.data.title;
  $("ntrain").textContent = String(info.data.training);
  const fromUrl = new URLSearchParams(location.search).get("observer");
  const known = fromUrl || localStorage.getItem("openjai-observer");
  if (known) { $("observer").value = known; await start(known); } else { show("start"); }
}
main();
