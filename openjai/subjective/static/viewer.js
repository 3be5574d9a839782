// Viewer: a decoded .jai over its original at native resolution; the slider moves the dividing line.
"use strict";
const $ = (id) => document.getElementById(id);
let items = [];

function fmt(v, digits) { return v === null || v === undefined ? "-" : Number(v).toFixed(digits); }

function native(img, w, h) {
  const dpr = window.devicePixelRatio || 1;
  img.width = w; img.height = h;
  img.style.width = (w / dpr) + "px"; img.style.height = (h / dpr) + "px";
}

function setDivider(pct) {
  // the decoded image shows right of the line, the original left of it
  $("top").style.clipPath = `inset(0 0 0 ${pct}%)`;
  $("divider").style.left = pct + "%";
  $("compare").dataset.divider = String(pct);
}

function load(i) {
  const it = items[i];
  const rows = [["file", it.name], ["size", `${it.width} x ${it.height} (${it.colour})`], ["model", it.model],
                ["bytes", it.bytes], ["bpp", fmt(it.bpp, 4)]];
  for (const [k, v] of Object.entries(it.metrics)) rows.push([k, v === null ? "identical" : fmt(v, 4)]);
  $("facts").innerHTML = "";
  for (const [k, v] of rows) {
    const tr = document.createElement("tr");
    const a = document.createElement("td"); a.textContent = k;
    const b = document.createElement("td"); b.textContent = v; b.dataset.key = k;
    tr.append(a, b); $("facts").appendChild(tr);
  }
  native($("top"), it.width, it.height); native($("bottom"), it.width, it.height);
  $("top").src = `/api/view/${i}/decoded.png`;
  $("sliderrow").hidden = !it.has_original;
  $("bottom").hidden = $("divider").hidden = !it.has_original;
  if (it.has_original) { $("bottom").src = `/api/view/${i}/original.png`; setDivider(Number($("slider").value)); }
  else { $("top").style.position = "static"; $("top").style.clipPath = ""; }
  const dpr = window.devicePixelRatio || 1;
  $("vwarn").hidden = window.innerWidth >= it.width / dpr;
  $("vwarn").textContent = "The window is narrower than the image: scroll to see the rest (images are never scaled).";
  document.body.dataset.state = "ready";
}

async function main() {
  const r = await fetch("/api/view", { cache: "no-store" });
  items = await r.json();
  if (!r.ok) { $("vwarn").hidden = false; $("vwarn").textContent = items.error; return; }
  items.forEach((it, i) => { const o = document.createElement("option"); o.value = i; o.textContent = it.name; $("pick").appendChild(o); });
  $("pick").addEventListener("change", () => load(Number($("pick").value)));
  $("slider").addEventListener("input", () => setDivider(Number($("slider").value)));
  $("compare").addEventListener("pointermove", (ev) => {
    if (ev.buttons !== 1) return;
    const r = $("compare").getBoundingClientRect();
    const pct = Math.max(0, Math.min(100, 100 * (ev.clientX - r.left) / r.width));
    $("slider").value = pct; setDivider(pct);
  });
  if (items.length) load(0); else document.body.dataset.state = "empty";
}
main();
