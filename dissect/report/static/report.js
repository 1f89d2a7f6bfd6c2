// dissect report: filter neuron cards by text and layer. Reads only data-* attributes and
// writes only textContent / hidden, so no artifact text is ever parsed as HTML.
(function () {
  "use strict";
  var box = document.getElementById("filter");
  var layerSel = document.getElementById("layer-filter");
  var count = document.getElementById("filter-count");
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.card"));
  if (!box || !count) {
    return;
  }

  function apply() {
    var terms = box.value.toLowerCase().split(/\s+/).filter(function (t) { return t; });
    var layer = layerSel ? layerSel.value : "";
    var shown = 0;
    cards.forEach(function (card) {
      var hay = card.getAttribute("data-search") || "";
      var ok = (!layer || card.getAttribute("data-layer") === layer) &&
        terms.every(function (t) { return hay.indexOf(t) !== -1; });
      card.hidden = !ok;
      if (ok) {
        shown += 1;
      }
    });
    count.textContent = shown + " of " + cards.length + " neurons shown";
  }

  box.addEventListener("input", apply);
  if (layerSel) {
    layerSel.addEventListener("change", apply);
  }
  // A play link becomes a player on click (players are built lazily: see cards.py).
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
  apply();
})();
