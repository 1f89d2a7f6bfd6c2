// dissect report: the neuron table and cards, built from the data shards in data/*.js.
//
// Local files cannot be fetched on file://, so each shard is a script that pushes its JSON
// payload onto window.DISSECT_SHARDS (see dissect/report/shards.py); this script adds them as
// <script src> elements (allowed by the CSP's script-src 'self') and removes each once run.
// Every artifact value goes into the page through textContent / setAttribute /
// createElement only: nothing from the data is ever parsed as HTML.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var FLAG_LLM = 1, FLAG_NCC = 2, FLAG_RICH = 4;
  var section = document.getElementById("neurons");
  var box = document.getElementById("filter");
  var layerSel = document.getElementById("layer-filter");
  var count = document.getElementById("filter-count");
  var status = document.getElementById("neurons-status");
  var table = document.getElementById("neuron-table");
  var more = document.getElementById("more");
  // For scripts and tests: the loaded neurons and clips, the current (filtered, sorted) view.
  var api = window.dissectReport = {ready: false, neurons: [], clips: [], view: []};
  if (!section || !box || !count || !table || !status || !more || !layerSel) {
    return;
  }

  // ------------------------------------------------------------------ small helpers
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) {
      e.className = cls;
    }
    if (text !== undefined && text !== null) {
      e.textContent = text;
    }
    return e;
  }

  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }

  function isNum(x) {
    return typeof x === "number";
  }

  // Python's f"{x:.4g}" (dissect.report.html.fmt_num); strings ("nan", "inf") pass through.
  function fmt(x) {
    if (!isNum(x)) {
      return x === null || x === undefined ? "" : String(x);
    }
    if (!isFinite(x)) {
      return isNaN(x) ? "nan" : (x > 0 ? "inf" : "-inf");
    }
    if (x === 0) {
      return Object.is(x, -0) ? "-0" : "0";
    }
    var exp = x.toExponential(3);
    var e = parseInt(exp.slice(exp.indexOf("e") + 1), 10);
    var strip = function (s) {
      return s.indexOf(".") === -1 ? s : s.replace(/0+$/, "").replace(/\.$/, "");
    };
    if (e < -4 || e >= 4) {
      return strip(exp.slice(0, exp.indexOf("e"))) + "e" + (e < 0 ? "-" : "+") +
        (Math.abs(e) < 10 ? "0" : "") + Math.abs(e);
    }
    return strip(x.toFixed(3 - e));
  }

  // ------------------------------------------------------------------ the data
  function addShard(p) {
    if (p.kind === "top") {
      p.shards.forEach(addShard);
      return;
    }
    if (p.kind === "clips") {
      api.clips = p.rows.map(function (r) {
        var c = {};
        p.fields.forEach(function (f, i) { c[f] = r[i]; });
        return c;
      });
      return;
    }
    var F = {};
    p.fields.forEach(function (f, i) { F[f] = i; });
    var interned = {kind: true, why: true, writer: true};  // cards.INTERNED
    p.rows.forEach(function (row) {
      var get = function (f) {
        var v = row[F[f]];
        return interned[f] && v !== null ? p.strings[v] : v;
      };
      var unit = get("unit");
      var concepts = get("concepts") || [];
      var first = concepts.length && concepts[0][1].length ? concepts[0][1][0][0] : "";
      api.neurons.push({
        layer: p.layer, unit: unit, id: "n-" + p.slug + "-" + unit, get: get,
        writer: get("writer"), rank: get("rank"), concept: first
      });
    });
  }

  // The text the filter matches: dissect.report.cards.search_text of the same neuron.
  function hay(n) {
    var parts = [n.layer, n.layer + ":" + n.unit, "unit " + n.unit, n.get("desc"), n.get("low"),
      n.writer, n.get("failed").length ? "llm failed" : ""];
    n.get("concepts").forEach(function (m) {
      m[1].forEach(function (c) { parts.push(c[0]); });
    });
    n.get("keywords").forEach(function (words) { parts.push.apply(parts, words); });
    return parts.join(" ").toLowerCase();
  }

  var CELLS = {
    rank: function (n) { return n.rank + 1; },
    layer: function (n) { return n.layer; },
    unit: function (n) { return n.unit; },
    desc: function (n) { return n.get("desc"); },
    kind: function (n) { return n.get("flags") & FLAG_NCC ? "none" : n.get("kind"); },
    writer: function (n) { return n.writer; },
    sel: function (n) { return n.get("sel"); },
    det: function (n) { return n.get("det"); },
    corr: function (n) { return n.get("corr"); },
    concept: function (n) { return n.concept; }
  };

  // ------------------------------------------------------------------ cards
  function badge(n) {
    var llm = n.get("flags") & FLAG_LLM;
    var b = el("span", "badge " + (llm ? "llm" : "rules"), n.writer || "no summary");
    b.title = "description written by";
    return b;
  }

  function explainPart(n) {
    var kind = n.get("kind");
    if (kind === null || kind === undefined) {
      return [];
    }
    var head;
    if (n.get("flags") & FLAG_NCC) {
      head = "no clear concept: " + n.get("why");
    } else {
      var det = n.get("det"), corr = n.get("corr");
      var score = det === null ? "not scored on the test clips" :
        "test detection AUROC " + fmt(det) + ", correlation " + (corr === null ? "n/a" : fmt(corr));
      head = "shown: " + kind + " (" + score + ")";
    }
    var out = [el("p", "score", head)];
    var ev = n.get("evidence");
    if (ev.length) {
      var ul = el("ul", "evidence");
      ev.forEach(function (e) {
        var li = el("li", null, String(e[0]) + " ");
        li.appendChild(el("span", "num", "AUROC " + fmt(e[1]) + ", d " + fmt(e[2]) + ", n " +
          (e[3] === null || e[3] === undefined ? "None" : String(e[3]))));
        ul.appendChild(li);
      });
      out.push(ul);
    }
    return out;
  }

  function scoreBar(score) {
    var w = isNum(score) && isFinite(score) ? Math.max(0, Math.min(1, score)) * 60 : 0;
    var s = svgEl("svg", {"class": "bar", width: 60, height: 8, "aria-hidden": "true"});
    s.appendChild(svgEl("rect", {width: 60, height: 8, fill: "#e6ecf3"}));
    s.appendChild(svgEl("rect", {width: w.toFixed(1), height: 8, fill: "#3a7bd5"}));
    return s;
  }

  function conceptsPart(n) {
    var tbody = el("tbody");
    n.get("concepts").forEach(function (m) {
      m[1].forEach(function (c) {
        var tr = el("tr");
        tr.appendChild(el("td", "m", m[0]));
        tr.appendChild(el("td", null, c[0]));
        var td = el("td", "score");
        if (isNum(c[1])) {
          td.appendChild(scoreBar(c[1]));
        }
        td.appendChild(document.createTextNode(" " + fmt(c[1])));
        tr.appendChild(td);
        tbody.appendChild(tr);
      });
    });
    if (!tbody.children.length) {
      return el("p", "note", "no closed-set concepts");
    }
    var t = el("table", "concepts");
    var head = el("tr");
    ["method", "concept", "score"].forEach(function (h) { head.appendChild(el("th", null, h)); });
    t.appendChild(el("thead")).appendChild(head);
    t.appendChild(tbody);
    return t;
  }

  function keywordsPart(n) {
    var kw = n.get("keywords");
    var p = el("p", "kw");
    ["adjectives", "nouns", "verbs"].forEach(function (group, i) {
      (kw[i] || []).forEach(function (w) {
        var chip = el("span", "chip " + group, w);
        chip.title = group;
        p.appendChild(chip);
      });
    });
    return p.children.length ? p : null;
  }

  function overlay(ov) {
    var s = svgEl("svg", {"class": "act", viewBox: "0 0 1000 100", preserveAspectRatio: "none",
      "aria-hidden": "true"});
    if (!ov) {
      return s;
    }
    var pts = ov[2];
    if (pts && pts.length) {
      var xy = [];
      for (var i = 0; i + 1 < pts.length; i += 2) {
        xy.push((pts[i] / 10).toFixed(1) + "," + (pts[i + 1] / 10).toFixed(1));
      }
      s.appendChild(svgEl("polyline", {points: xy.join(" "), fill: "none", stroke: "#ffb000",
        "stroke-width": 2, "vector-effect": "non-scaling-stroke"}));
    }
    var x = ov[1];
    if (isNum(x)) {
      s.appendChild(svgEl("line", {x1: x, x2: x, y1: 0, y2: 100, stroke: "#ff2d55",
        "stroke-width": 1.5, "stroke-dasharray": "4 3", "vector-effect": "non-scaling-stroke"}));
      s.appendChild(svgEl("polygon", {points: (x - 12).toFixed(1) + ",0 " + (x + 12).toFixed(1) +
        ",0 " + x.toFixed(1) + ",12", fill: "#ff2d55"}));
    }
    return s;
  }

  function clipFigure(n, e, overlays) {
    var c = api.clips[e[0]] || {id: String(e[0]), audio: null, image: null, caption: ""};
    var rich = n.get("flags") & FLAG_RICH;
    var fig = el("figure", "clip");
    if (rich && c.image) {
      var spec = fig.appendChild(el("div", "spec"));
      var img = el("img");
      img.setAttribute("src", c.image);
      img.setAttribute("alt", "spectrogram of " + c.id);
      img.setAttribute("loading", "lazy");
      spec.appendChild(img);
      spec.appendChild(overlay(overlays[e[0]]));
    }
    if (!c.audio) {
      fig.appendChild(el("p", "note", "audio unavailable"));
    } else if (rich) {
      var player = el("audio");
      player.controls = true;
      player.preload = "none";
      player.setAttribute("src", c.audio);
      fig.appendChild(player);
    } else {  // becomes a player on click (see below); without JS it would open the WAV
      var link = el("a", "play", "\u25b6 listen");
      link.setAttribute("href", c.audio);
      fig.appendChild(link);
    }
    var meta = [c.id];
    if (isNum(e[1])) {
      meta.push("value " + fmt(e[1]));
    }
    if (isNum(e[2])) {
      meta.push("peak " + fmt(e[2]) + " ms");
    }
    var ov = overlays[e[0]];
    if (ov && isNum(ov[3]) && isNum(ov[4])) {
      meta.push("activation " + fmt(ov[3]) + " to " + fmt(ov[4]));
    }
    var cap = fig.appendChild(el("figcaption", null, meta.join(" \u00b7 ")));
    if (c.caption) {
      cap.appendChild(el("span", "cap", c.caption));
    }
    return fig;
  }

  function clipColumn(n, title, entries, overlays) {
    var col = el("div", "col");
    col.appendChild(el("h4", null, title));
    if (!entries.length) {
      col.appendChild(el("p", "note", "none recorded"));
    }
    entries.forEach(function (e) { col.appendChild(clipFigure(n, e, overlays)); });
    return col;
  }

  // One neuron card, the same content as dissect.report.cards describes.
  function card(n) {
    var a = el("article", "card");
    a.id = n.id;
    a.setAttribute("data-layer", n.layer);
    var header = a.appendChild(el("header"));
    var h3 = header.appendChild(el("h3"));
    h3.appendChild(el("span", "layer", n.layer));
    h3.appendChild(document.createTextNode(" \u00b7 unit " + n.unit));
    header.appendChild(badge(n));
    var sel = header.appendChild(el("span", "sel", "selectivity " + fmt(n.get("sel"))));
    sel.title = "(mean of top-k - mean) / std";
    var ncc = n.get("flags") & FLAG_NCC;
    a.appendChild(el("p", ncc ? "desc nocc" : "desc", n.get("desc") || "(no description)"));
    n.get("failed").forEach(function (t) {
      var f = a.appendChild(el("p", "failed", t));
      f.title = "retried on the next run";
    });
    explainPart(n).forEach(function (x) { a.appendChild(x); });
    var low = n.get("low");
    if (low) {
      var p = a.appendChild(el("p", "low"));
      p.appendChild(el("b", null, "Low:"));
      p.appendChild(document.createTextNode(" " + low));
    }
    var facts = a.appendChild(el("div", "facts"));
    facts.appendChild(conceptsPart(n));
    var kw = keywordsPart(n);
    if (kw) {
      facts.appendChild(kw);
    }
    var overlays = {};
    (n.get("overlays") || []).forEach(function (ov) { overlays[ov[0]] = ov; });
    var clips = a.appendChild(el("div", "clips"));
    clips.appendChild(clipColumn(n, "Top clips", n.get("top"), overlays));
    clips.appendChild(clipColumn(n, "Bottom clips", n.get("bottom"), overlays));
    return a;
  }

  // ------------------------------------------------------------------ the table
  var OPEN = parseInt(section.getAttribute("data-open"), 10) || 0;
  var PAGE = parseInt(section.getAttribute("data-page"), 10) || 100;
  var columns = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
    return th.getAttribute("data-sort");
  });
  var sortKey = "rank", sortDir = 1, limit = PAGE;
  var chosen = new Map();  // card id -> true (opened) / false (closed) by the reader
  var cards = new Map();  // card id -> built <article>, kept so players survive re-renders
  var tbody = table.querySelector("tbody");

  function cardOf(n) {
    if (!cards.has(n.id)) {
      cards.set(n.id, card(n));
    }
    return cards.get(n.id);
  }

  function isOpen(n, i) {
    return chosen.has(n.id) ? chosen.get(n.id) : i < OPEN;
  }

  function cardRow(n) {
    var tr = el("tr", "card-row");
    var td = tr.appendChild(el("td"));
    td.colSpan = columns.length;
    td.appendChild(cardOf(n));
    return tr;
  }

  function row(n, i) {
    var tr = el("tr", "row");
    tr.setAttribute("data-card", n.id);
    tr.setAttribute("aria-expanded", String(isOpen(n, i)));
    tr.tabIndex = 0;
    columns.forEach(function (key) {
      var v = CELLS[key] ? CELLS[key](n) : "";
      var td = el("td", "c-" + key, isNum(v) && key !== "rank" && key !== "unit" ? fmt(v) : v);
      if (key === "desc") {
        td.title = v;
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function toggle(tr) {
    var id = tr.getAttribute("data-card");
    var n = api.view.find(function (x) { return x.id === id; });
    if (!n) {
      return;
    }
    var open = tr.getAttribute("aria-expanded") !== "true";
    chosen.set(id, open);
    tr.setAttribute("aria-expanded", String(open));
    var next = tr.nextElementSibling;
    if (open) {
      tr.after(cardRow(n));
    } else if (next && next.classList.contains("card-row")) {
      next.remove();
    }
  }

  function render() {
    var frag = document.createDocumentFragment();
    var shown = Math.min(limit, api.view.length);
    for (var i = 0; i < shown; i += 1) {
      var n = api.view[i];
      frag.appendChild(row(n, i));
      if (isOpen(n, i)) {
        frag.appendChild(cardRow(n));
      }
    }
    tbody.replaceChildren(frag);
    var total = api.neurons.length;
    count.textContent = api.view.length + " of " + total + " neurons match" +
      (shown < api.view.length ? " (" + shown + " listed)" : "");
    more.hidden = shown >= api.view.length;
    more.textContent = "show " + Math.min(PAGE, api.view.length - shown) + " more";
  }

  function compare(a, b) {
    var x = CELLS[sortKey](a), y = CELLS[sortKey](b);
    var xm = x === null || x === undefined || x === "", ym = y === null || y === undefined ||
      y === "";
    if (xm || ym) {  // missing values last, whichever the direction
      return xm === ym ? a.rank - b.rank : (xm ? 1 : -1);
    }
    if (!isNum(x) || !isNum(y)) {  // "nan" strings and text compare as text
      x = String(x).toLowerCase();
      y = String(y).toLowerCase();
    }
    return x < y ? -sortDir : (x > y ? sortDir : a.rank - b.rank);
  }

  function apply(keepLimit) {
    if (!api.ready) {  // start() applies the filter as typed so far
      return;
    }
    var terms = box.value.toLowerCase().split(/\s+/).filter(function (t) { return t; });
    var layer = layerSel ? layerSel.value : "";
    api.view = api.neurons.filter(function (n) {
      return (!layer || n.layer === layer) &&
        terms.every(function (t) { return n.hay.indexOf(t) !== -1; });
    });
    api.view.sort(compare);
    if (!keepLimit) {
      limit = PAGE;
    }
    render();
  }

  function sortBy(key) {
    sortDir = key === sortKey ? -sortDir : 1;
    sortKey = key;
    table.querySelectorAll("thead th").forEach(function (th) {
      var k = th.getAttribute("data-sort");
      th.setAttribute("aria-sort", k !== sortKey ? "none" :
        (sortDir > 0 ? "ascending" : "descending"));
    });
    apply(true);
  }

  // A link to #n-<layer>-<unit> opens that neuron's card.
  function openHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var i = api.view.findIndex(function (n) { return n.id === id; });
    if (i === -1) {
      return;
    }
    chosen.set(id, true);
    limit = Math.max(limit, i + 1);
    render();
    cardOf(api.view[i]).scrollIntoView();
  }

  function listen() {
    box.addEventListener("input", function () { apply(false); });
    layerSel.addEventListener("change", function () { apply(false); });
    table.querySelector("thead").addEventListener("click", function (e) {
      var th = e.target.closest("th");
      if (th && api.ready) {
        sortBy(th.getAttribute("data-sort"));
      }
    });
    tbody.addEventListener("click", function (e) {
      var tr = e.target.closest("tr.row");
      if (tr) {
        toggle(tr);
      }
    });
    tbody.addEventListener("keydown", function (e) {
      var tr = e.target.closest ? e.target.closest("tr.row") : null;
      if (tr && (e.key === "Enter" || e.key === " ")) {
        e.preventDefault();
        toggle(tr);
      }
    });
    more.addEventListener("click", function () {
      limit += PAGE;
      render();
    });
    window.addEventListener("hashchange", openHash);
  }

  // The first cards, from data/top.js, while the layer shards load.
  function showFirst() {
    api.view = api.neurons.slice().sort(function (a, b) { return a.rank - b.rank; });
    render();
    count.textContent = "loading the neuron table...";
  }

  function start() {
    api.neurons.sort(function (a, b) { return a.rank - b.rank; });
    api.neurons.forEach(function (n) { n.hay = hay(n); });
    api.ready = true;
    apply(false);
    status.textContent = api.neurons.length + " neurons, " + api.clips.length +
      " exemplar clips; click a row to open its card";
    section.setAttribute("data-ready", "1");
    openHash();
  }

  // ------------------------------------------------------------------ loading the shards
  function load(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = function () { s.remove(); resolve(); };
      s.onerror = function () { s.remove(); reject(new Error("cannot load " + src)); };
      document.body.appendChild(s);
    });
  }

  var layerSrcs = [];
  Array.prototype.forEach.call(layerSel.options, function (o) {
    if (o.getAttribute("data-shard")) {
      layerSrcs.push(o.getAttribute("data-shard"));
    }
  });
  var queue = window.DISSECT_SHARDS = window.DISSECT_SHARDS || [];
  var drain = function () { queue.splice(0).forEach(addShard); };
  listen();
  Promise.all([section.getAttribute("data-clips"), section.getAttribute("data-top")].map(load))
    .then(function () {
      drain();
      showFirst();
      return Promise.all(layerSrcs.map(load));
    }).then(function () {
      api.neurons = [];
      drain();
      start();
    }).catch(function (err) {
      status.textContent = "The neuron data did not load (" + err.message + "); " +
        "keep the report's data/ folder next to index.html.";
      status.className = "error";
      console.error("dissect report: " + err.message);
    });

  // ------------------------------------------------------------------ audio
  // A play link becomes a player on click (an <audio controls> costs Chromium ~4 ms to build,
  // so only the cards with spectrograms get players up front).
  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a.play") : null;
    if (!link) {
      return;
    }
    e.preventDefault();
    var player = document.createElement("audio");
    player.controls = true;
    player.preload = "auto";
    player.src = link.getAttribute("href");
    link.replaceWith(player);
    var started = player.play();
    if (started && started.catch) {
      started.catch(function () {});
    }
  });
  // One player at a time.
  document.addEventListener("play", function (e) {
    document.querySelectorAll("audio").forEach(function (a) {
      if (a !== e.target) {
        a.pause();
      }
    });
  }, true);
})();
