"""The page of ``fastleaf serve``: one self-contained HTML file (no external scripts or fonts),
which posts the chosen photo's bytes to ``/predict`` and lists the answer."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fastleaf: which leaf is this?</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; color: #1d2b1f;
         padding: 0 1rem; }
  h1 { font-size: 1.5rem; }
  #drop { display: block; border: 2px dashed #5b8a5f; border-radius: 12px; padding: 2rem;
          text-align: center; background: #f3f8f1; cursor: pointer; }
  #drop.over { background: #dcefd8; }
  #result { display: flex; gap: 1.5rem; margin-top: 1.5rem; align-items: flex-start; }
  #preview { max-width: 14rem; max-height: 14rem; border-radius: 8px; display: none; }
  table { border-collapse: collapse; flex: 1; }
  td, th { padding: .35rem .6rem; border-bottom: 1px solid #d5e2d2; text-align: left; }
  td.probability { text-align: right; font-variant-numeric: tabular-nums; }
  .bar { height: .45rem; background: #5b8a5f; border-radius: 3px; }
  #error { color: #a12020; margin-top: 1rem; }
  #status { color: #55655a; margin-top: .5rem; }
</style>
</head>
<body>
<h1>Which leaf is this?</h1>
<p id="model"></p>
<label id="drop" for="file">Drop a photo here, or click to pick one
  <input id="file" type="file" accept="image/*" hidden>
</label>
<div id="status"></div>
<div id="error" role="alert"></div>
<div id="result">
  <img id="preview" alt="the uploaded photo">
  <table id="top" hidden>
    <thead><tr><th>#</th><th>species</th><th>probability</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
</div>
<script>
const drop = document.getElementById("drop"), input = document.getElementById("file");
const table = document.getElementById("top"), body = table.querySelector("tbody");
const errorBox = document.getElementById("error"), statusBox = document.getElementById("status");
const preview = document.getElementById("preview");

fetch("/health").then(r => r.json()).then(h => {
  document.getElementById("model").textContent = `${h.model}, ${h.classes} species`;
});

function cell(row, text, cls) {
  const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td;
}

async function classify(file) {
  errorBox.textContent = ""; table.hidden = true; body.innerHTML = "";
  document.body.dataset.state = "busy"; statusBox.textContent = `classifying ${file.name}...`;
  preview.src = URL.createObjectURL(file); preview.style.display = "block";
  try {
    const response = await fetch("/predict", {method: "POST", body: file});
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    answer.top.forEach((item, i) => {
      const row = body.insertRow();
      cell(row, i + 1); cell(row, item.species, "species");
      cell(row, item.probability.toFixed(4), "probability");
      const bar = document.createElement("div"); bar.className = "bar";
      // bars relative to the most likely species, so a 176-way answer is still readable
      bar.style.width = `${Math.round(120 * item.probability / answer.top[0].probability)}px`;
      row.insertCell().append(bar);
    });
    table.hidden = false; statusBox.textContent = file.name;
    document.body.dataset.state = "done";
  } catch (err) {
    errorBox.textContent = err.message; statusBox.textContent = "";
    document.body.dataset.state = "error";
  }
}

input.addEventListener("change", () => input.files.length && classify(input.files[0]));
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) classify(e.dataTransfer.files[0]);
});
</script>
</body>
</html>
"""
