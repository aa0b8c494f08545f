"use strict";
window.__errors = [];
window.addEventListener("error", e => { window.__errors.push(String(e.message)); document.body.dataset.errors = window.__errors.join(" | "); });
const D = JSON.parse(document.getElementById("data").textContent);
// Parsed once; the text (tens of MB at 100,000 findings) is not kept in the page.
document.getElementById("data").remove();
const W = D.words;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
const fmt = n => Number(n).toLocaleString(D.lang === "zh" ? "zh-CN" : "en-US");
const sevCell = s => el("td", {class: "sev" + s}, D.severities[s]);
const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
// A bar chart of [label, value] pairs, as inline SVG.
function bars(title, pairs, vertical) {
  const box = el("div", {class: "chart"}, el("h3", {}, title));
  if (!pairs.length) { box.append(el("div", {class: "muted"}, "-")); return box; }
  const max = Math.max(...pairs.map(p => p[1]), 1);
  if (vertical) {
    const w = Math.max(360, pairs.length * 14), h = 170, bw = (w - 40) / pairs.length;
    const s = svg("svg", {width: "100%", viewBox: `0 0 ${w} ${h + 40}`, role: "img"});
    pairs.forEach((p, i) => {
      const bh = Math.round((p[1] / max) * h);
      const r = svg("rect", {x: 30 + i * bw, y: h - bh + 5, width: Math.max(1, bw - 2), height: bh, fill: "#3c6fb4"});
      r.append(svg("title", {}, `${p[0]}: ${p[1]}`));
      s.append(r);
      if (pairs.length <= 40 || i % Math.ceil(pairs.length / 20) === 0)
        s.append(svg("text", {x: 30 + i * bw, y: h + 20, "font-size": 9, transform: `rotate(45 ${30 + i * bw} ${h + 20})`}, p[0].slice(5)));
    });
    s.append(svg("text", {x: 0, y: 12, "font-size": 10}, fmt(max)));
    box.append(s);
  } else {
    const rowH = 16, w = 460, h = pairs.length * rowH;
    const s = svg("svg", {width: "100%", viewBox: `0 0 ${w} ${h + 4}`, role: "img"});
    pairs.forEach((p, i) => {
      const bw = Math.max(1, Math.round((p[1] / max) * (w - 170)));
      s.append(svg("text", {x: 0, y: i * rowH + 12, "font-size": 11}, p[0]));
      s.append(svg("rect", {x: 110, y: i * rowH + 3, width: bw, height: rowH - 5, fill: "#3c6fb4"}));
      s.append(svg("text", {x: 114 + bw, y: i * rowH + 12, "font-size": 11}, fmt(p[1])));
    });
    box.append(s);
  }
  return box;
}
// Links may preset a table: report.html#findings.q=SUS-2Q&findings.sort=4&findings.dir=desc
const HASH = new URLSearchParams(location.hash.slice(1));
// A sortable, filterable, paged table over rows of data.
function table(opts) {
  const {columns, rows, pageSize, expand, id} = opts;
  let view = rows.slice(), page = 0, sortCol = -1, asc = true, open = new Set();
  if (HASH.has(id + ".sort")) { sortCol = +HASH.get(id + ".sort"); asc = HASH.get(id + ".dir") !== "desc"; }
  const wrap = el("div", {id});
  const query = el("input", {type: "search", placeholder: W.filter + "…", "aria-label": W.filter});
  const info = el("span", {class: "muted"});
  const prev = el("button", {onclick: () => { page = Math.max(0, page - 1); draw(); }}, W.previous);
  const next = el("button", {onclick: () => { page = Math.min(pages() - 1, page + 1); draw(); }}, W.next);
  const extra = opts.controls ? opts.controls(() => { apply(); }) : [];
  const tbody = el("tbody");
  const head = el("tr");
  columns.forEach((c, i) => head.append(el("th", {onclick: () => { asc = sortCol === i ? !asc : c.desc !== true; sortCol = i; apply(); }}, c.label)));
  const t = el("table", {}, el("thead", {}, head), tbody);
  wrap.append(el("div", {class: "bar"}, query, ...extra, prev, next, info), t);
  const pages = () => Math.max(1, Math.ceil(view.length / pageSize));
  function apply() {
    const q = query.value.trim().toLowerCase();
    view = rows.filter(r => (!opts.keep || opts.keep(r)) && (!q || columns.some(c => String(c.text(r)).toLowerCase().includes(q))));
    if (sortCol >= 0) {
      const c = columns[sortCol], key = c.sort || c.text;
      view.sort((a, b) => { const x = key(a), y = key(b); const o = x < y ? -1 : x > y ? 1 : 0; return asc ? o : -o; });
    }
    head.querySelectorAll("th").forEach((th, i) => th.className = i === sortCol ? (asc ? "sorted-asc" : "sorted-desc") : "");
    page = 0; draw();
  }
  function draw() {
    tbody.replaceChildren();
    for (const r of view.slice(page * pageSize, (page + 1) * pageSize)) {
      const tr = el("tr", {class: expand ? "row case" : "row"});
      columns.forEach(c => tr.append(c.cell ? c.cell(r) : el("td", c.num ? {class: "num"} : {}, c.text(r))));
      tbody.append(tr);
      if (expand) {
        const key = r[1];
        tr.addEventListener("click", () => { open.has(key) ? open.delete(key) : open.add(key); draw(); });
        if (open.has(key)) tbody.append(el("tr", {class: "detail"}, el("td", {colspan: columns.length}, expand(r))));
      }
    }
    info.textContent = `${fmt(view.length)} · ${W.page} ${page + 1}/${pages()}`;
  }
  query.addEventListener("input", apply);
  if (HASH.has(id + ".q")) query.value = HASH.get(id + ".q");
  apply();
  return wrap;
}
function evidence(obj) {
  const t = el("table", {class: "ev"});
  for (const [k, v] of Object.entries(obj || {})) t.append(el("tr", {}, el("td", {class: "muted"}, k), el("td", {}, v)));
  return t;
}
const R = D.rules;
const F = D.findings;
// Finding fields: 0 rule, 1 severity, 2 family, 3 merchants, 4 date, 5 amount, 6 message,
// 7 entity, 8 status, 9 baseline, 10 fingerprint, 11 evidence, 12 exception, 13 about transactions.
function findingsTable(rows, id, pageSize) {
  let sev = "", fam = "", rule = "";
  const pick = (label, values, set) => {
    const s = el("select", {"aria-label": label}, el("option", {value: ""}, label + ": " + W.all));
    values.forEach(([v, t]) => s.append(el("option", {value: v}, t)));
    return [s, set];
  };
  const firedRules = [...new Set(rows.map(r => r[0]))].sort((a, b) => a - b);
  return table({
    id, rows, pageSize,
    keep: r => (sev === "" || r[1] === +sev) && (fam === "" || r[2] === +fam) && (rule === "" || r[0] === +rule),
    controls: redraw => {
      const mk = (label, values, setter) => {
        const s = el("select", {"aria-label": label}, el("option", {value: ""}, label + ": " + W.all));
        values.forEach(([v, t]) => s.append(el("option", {value: v}, t)));
        s.addEventListener("change", () => { setter(s.value); redraw(); });
        return s;
      };
      return [
        mk(W.severity, D.severities.map((s, i) => [i, s]).reverse(), v => sev = v),
        mk(W.family, D.families.map((f, i) => [i, f]), v => fam = v),
        mk(W.rule, firedRules.map(i => [i, R[i].id]), v => rule = v),
      ];
    },
    columns: [
      {label: W.rule, text: r => R[r[0]].id},
      {label: W.severity, text: r => D.severities[r[1]], sort: r => r[1], desc: true, cell: r => sevCell(r[1])},
      {label: W.merchant, text: r => r[3]},
      {label: W.date, text: r => r[4]},
      {label: W.amount, text: r => r[5], sort: r => r[5] === "" ? -1 : +r[5], num: true},
      {label: W.message, text: r => r[6], cell: r => el("td", {}, r[6], " ", r[8] ? el("span", {class: "tag"}, r[8] + (r[12] ? " " + r[12] : "")) : null, r[9] ? el("span", {class: "tag"}, r[9]) : null)},
      {label: W.evidence, text: r => Object.values(r[11] || {}).join(" "), cell: r => el("td", {}, evidence(r[11]))},
    ],
  });
}
function render() {
  const app = document.getElementById("app");
  const run = D.run;
  app.append(el("h1", {}, W.title));
  app.append(el("div", {class: "facts"}, `${W.as_of} ${run.as_of} · posaudit ${run.version} · ${run.rules} ${W.rule} (${run.digest.slice(0, 12)}) · exit ${run.exit_code} (${run.fail_on})`));
  const bySev = D.severities.map(() => 0), byFam = D.families.map(() => 0), byRule = {}, byDay = {};
  F.forEach(f => { bySev[f[1]]++; byFam[f[2]]++; byRule[f[0]] = (byRule[f[0]] || 0) + 1; if (f[4] && f[13]) byDay[f[4]] = (byDay[f[4]] || 0) + 1; });
  const cards = el("div", {class: "cards", id: "counts"});
  const card = (n, label, id) => cards.append(el("div", {class: "card", id}, el("b", {}, fmt(n)), el("span", {}, label)));
  card(run.total, W.findings, "count-findings");
  card(D.cases.length, W.cases, "count-cases");
  card(run.merchants, W.merchant, "count-merchants");
  card(run.rejected_total, W.rejected, "count-rejected");
  D.severities.map((s, i) => [s, i]).reverse().forEach(([s, i]) => card(bySev[i], s, "count-sev-" + i));
  app.append(el("h2", {}, W.summary), cards);
  const famTable = el("table", {id: "by-family"}, el("tr", {}, el("th", {}, W.family), el("th", {}, W.count)));
  D.families.forEach((f, i) => famTable.append(el("tr", {}, el("td", {}, f), el("td", {class: "num"}, fmt(byFam[i])))));
  app.append(famTable);
  const days = Object.keys(byDay).sort().map(d => [d, byDay[d]]);
  const rules = Object.entries(byRule).map(([i, n]) => [R[i].id, n]).sort((a, b) => b[1] - a[1]).slice(0, 20);
  const buckets = {};
  D.cases.forEach(c => { const b = Math.floor(c[3] / 10) * 10; buckets[b] = (buckets[b] || 0) + 1; });
  const scorePairs = Object.keys(buckets).map(Number).sort((a, b) => a - b).map(b => [`${b}-${b + 9}`, buckets[b]]);
  app.append(el("div", {class: "charts"}, bars(W.per_day, days, true), bars(W.per_rule, rules, false), bars(W.scores, scorePairs, false)));

  app.append(el("h2", {}, W.cases));
  app.append(table({
    id: "cases", rows: D.cases, pageSize: 50,
    expand: c => findingsTable(c[9].map(i => F[i]), "case-" + c[1], 25),
    columns: [
      {label: "#", text: c => c[0], num: true},
      {label: W.merchant, text: c => c[1]},
      {label: W.name, text: c => c[2]},
      {label: W.score, text: c => c[3], num: true, desc: true},
      {label: W.severity, text: c => D.severities[c[4]], sort: c => c[4], desc: true, cell: c => sevCell(c[4])},
      {label: W.typologies, text: c => c[5]},
      {label: W.tier, text: c => c[6]},
      {label: W.cash_out, text: c => c[7], sort: c => +c[7], num: true, desc: true},
      {label: W.findings, text: c => c[8], num: true, desc: true},
    ],
  }));

  app.append(el("h2", {}, W.findings), findingsTable(F, "findings", 100));

  app.append(el("h2", {}, W.catalogue));
  const cat = el("table", {id: "catalogue"}, el("tr", {}, el("th", {}, W.rule), el("th", {}, W.title_col), el("th", {}, W.family), el("th", {}, W.severity), el("th", {}, W.count), el("th", {}, W.basis)));
  R.filter(r => r.fired).forEach(r => cat.append(el("tr", {}, el("td", {}, r.id), el("td", {}, r.title), el("td", {}, r.family), el("td", {}, r.severity), el("td", {class: "num"}, fmt(r.findings)), el("td", {}, r.basis, r.sources ? el("div", {class: "muted"}, r.sources) : null))));
  app.append(cat);

  app.append(el("h2", {}, W.inputs));
  const inp = el("table", {id: "inputs"}, el("tr", {}, ...[W.input, W.file, "SHA-256", W.rows_read, W.accepted, W.rejected].map(h => el("th", {}, h))));
  D.inputs.forEach(i => inp.append(el("tr", {}, el("td", {}, i[0]), el("td", {}, i[1]), el("td", {class: "muted"}, i[2]), ...i.slice(3).map(n => el("td", {class: "num"}, fmt(n))))));
  app.append(inp);
  if (D.rejected.length) {
    app.append(el("h2", {}, `${W.rejected} (${fmt(run.rejected_total)})`));
    app.append(table({id: "rejected", rows: D.rejected, pageSize: 50, columns: [W.input, W.file, W.line, W.column, W.value, W.reason].map((label, i) => ({label, text: r => r[i], num: i === 2}))}));
  }
  app.append(el("h2", {}, W.rules_run));
  app.append(table({id: "rules", rows: R, pageSize: 100, columns: [
    {label: W.rule, text: r => r.id},
    {label: W.title_col, text: r => r.title},
    {label: W.status, text: r => r.shadow ? W.in_shadow : r.status === "skipped" ? W.skipped + ": " + r.reason : r.status === "failed" ? W.failed + ": " + r.reason : r.status},
    {label: W.findings, text: r => r.findings, num: true, desc: true},
  ]}));
  document.body.dataset.ready = "1";
}
render();
