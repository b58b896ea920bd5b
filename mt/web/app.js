// The page of `mt serve` (and of `mt translate --attention-html`): translate as you type, draw the
// attention of the best translation as a heatmap between words (a source word's pieces summed, a
// target word's averaged) or pieces, highlight on hover the source words a target word attends to. With window.MT_DATA set (a self-contained file) it draws that and fetches nothing.
// A server started with --api-key wants the key: the field in the header holds it, for this tab only
// (sessionStorage: gone when the tab closes, never sent to another origin), and requests carry it as
// "Authorization: Bearer KEY".
"use strict";
const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "mt-api-key";
let current = null;   // one entry of POST /v1/translate's "translations"

function colour(weight) {  // viridis, coarsely: dark blue (0) -> green -> yellow (1)
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(Math.max(weight, 0), 1) * (stops.length - 1), i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
  return "rgb(" + stops[i].map((c, k) => Math.round(c + f * (stops[i + 1][k] - c))).join(",") + ")";
}

function view() {  // the weights (L, H, T, S) and labels of the chosen level
  const a = current.attention;
  return $("level").value === "word" ? { weights: a.word_weights, sources: a.source_words, targets: a.target_words }
    : { weights: a.weights, sources: a.source_pieces, targets: a.target_pieces };
}

function matrix() {  // (T, S) for the chosen layer and head, or the heads averaged
  const layer = view().weights[Number($("layer").value)];
  const head = $("head").value;
  if (head !== "avg") return layer[Number(head)];
  return layer[0].map((row, t) => row.map((_, s) => layer.reduce((sum, h) => sum + h[t][s], 0) / layer.length));
}

function fillSelect(select, count, withAverage) {
  const keep = select.value;
  select.replaceChildren();
  if (withAverage) select.add(new Option("average of heads", "avg"));
  for (let i = 0; i < count; i++) select.add(new Option(String(i), String(i)));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : select.options[withAverage ? 0 : count - 1].value;
}

function drawHeatmap() {
  const table = $("heatmap");
  table.replaceChildren();
  if (!current || !current.attention) return;
  const weights = matrix(), { sources, targets } = view();
  const head = table.createTHead().insertRow();
  head.appendChild(document.createElement("th"));
  sources.forEach((label) => { const th = document.createElement("th"); th.textContent = label; head.appendChild(th); });
  const body = table.createTBody();
  targets.forEach((label, t) => {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.textContent = label;
    th.className = "target";
    row.appendChild(th);
    weights[t].forEach((w) => { const cell = row.insertCell(); cell.style.background = colour(w); cell.textContent = Math.round(w * 100); cell.title = w.toFixed(3); });
    row.addEventListener("mouseenter", () => highlight(t, weights));
    row.addEventListener("mouseleave", () => highlight(-1, weights));
  });
}

function highlight(t, weights) {  // the source words (pieces) holding most of target word t's attention
  const rows = $("heatmap").tBodies[0].rows, columns = $("heatmap").tHead.rows[0].cells;
  [...rows].forEach((row, i) => row.classList.toggle("active", i === t));
  const strongest = t < 0 ? -1 : weights[t].indexOf(Math.max(...weights[t]));
  for (let s = 1; s < columns.length; s++) {
    columns[s].classList.toggle("highlight", t >= 0 && weights[t][s - 1] >= 0.2);
    columns[s].classList.toggle("strongest", s - 1 === strongest);
  }
}

function show(entry) {
  current = entry;
  $("translation").textContent = entry ? entry.text : "";
  showTerms(entry && entry.applied_terms ? entry : null);
  $("nbest").replaceChildren(...(entry ? entry.n_best : []).map((h) => { const li = document.createElement("li"); li.textContent = h.text + "  (" + h.score.toFixed(3) + ")"; return li; }));
  if (entry && entry.attention) {
    fillSelect($("layer"), entry.attention.weights.length, false);
    fillSelect($("head"), entry.attention.weights[0].length, true);
  }
  drawHeatmap();
}

// The glossary box: "source = target" (or a tab) per line -> [[source, target], ...]; other lines are ignored.
function glossaryEntries() {
  return $("glossary").value.split("\n").map((line) => line.split(line.includes("\t") ? "\t" : "="))
    .filter((cells) => cells.length === 2 && cells[0].trim() && cells[1].trim())
    .map((cells) => [cells[0].trim(), cells[1].trim()]);
}

function showTerms(entry) {
  const terms = entry ? entry.applied_terms.map((t) => "✓ " + t.source + " → " + t.target)
    .concat(entry.missed_terms.map((t) => "✗ " + t.source + " → " + t.target + " (not in the output)")) : [];
  $("terms").textContent = terms.join("   ");
}

let timer = null, asked = 0;
async function translateNow() {
  const text = $("source").value.trim(), ticket = ++asked;
  if (!text) { show(null); return; }
  $("status").textContent = "translating…";
  try {
    const headers = { "Content-Type": "application/json" }, key = $("api-key").value;
    if (key) headers.Authorization = "Bearer " + key;
    const response = await fetch("/v1/translate", { method: "POST", headers,
      body: JSON.stringify({ q: text, n_best: 3, attention: true, glossary: glossaryEntries() }) });
    const body = await response.json();
    if (ticket !== asked) return;  // a newer request is on its way
    if (response.status === 403) { $("status").textContent = body.error + ": enter the server's key in the API key field"; return; }
    if (!response.ok) { $("status").textContent = body.error; return; }
    $("pair").textContent = body.source + " → " + body.target;
    show(body.translations[0]);
    $("status").textContent = "";
  } catch (error) { $("status").textContent = "server unreachable: " + error; }
}

$("level").addEventListener("change", drawHeatmap);
$("layer").addEventListener("change", drawHeatmap);
$("head").addEventListener("change", drawHeatmap);
if (window.MT_DATA) {
  const items = window.MT_DATA.items;
  const pick = (i) => { $("source").value = items[i].source; show(items[i].translation); };
  if (items.length > 1) {
    const select = document.createElement("select");
    items.forEach((item, i) => select.add(new Option(item.source, String(i))));
    select.addEventListener("change", () => pick(Number(select.value)));
    $("source").before(select);
  }
  $("source").readOnly = true;
  $("key-field").hidden = true;
  $("pair").textContent = window.MT_DATA.pair;
  pick(0);
} else {
  $("api-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
  $("api-key").addEventListener("input", () => {
    sessionStorage.setItem(KEY_STORAGE, $("api-key").value);
    clearTimeout(timer);
    timer = setTimeout(translateNow, 250);
  });
  for (const box of ["source", "glossary"]) {
    $(box).addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(translateNow, 250); });
  }
  if ($("source").value) translateNow();
}
