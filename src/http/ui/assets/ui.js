// Keyboard navigation for weft's tables: j / k move through the rows of the first data table,
// Enter opens the row's first link. Pages work without it.
(function () {
  "use strict";
  var current = -1;
  function rows() {
    var t = document.querySelector("table.data tbody");
    return t ? Array.prototype.slice.call(t.rows) : [];
  }
  function show(i) {
    var rs = rows();
    if (!rs.length) return;
    if (current >= 0 && rs[current]) rs[current].classList.remove("cursor");
    current = Math.max(0, Math.min(rs.length - 1, i));
    rs[current].classList.add("cursor");
    rs[current].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "j") { show(current + 1); e.preventDefault(); }
    else if (e.key === "k") { show(current - 1); e.preventDefault(); }
    else if (e.key === "Enter" && current >= 0) {
      var link = rows()[current] && rows()[current].querySelector("a[href]");
      if (link) { window.location.href = link.href; e.preventDefault(); }
    }
  });
})();
