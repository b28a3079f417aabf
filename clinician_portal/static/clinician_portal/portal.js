/* Vigil portal: live countdowns and the alert queue's background refresh. Progressive: every
   page works without this script. No external code. */
(function () {
  "use strict";

  function fmt(seconds) {
    var overdue = seconds < 0;
    var s = Math.abs(Math.round(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var text = h ? h + " h " + m + " min" : (m ? m + " min " + r + " s" : r + " s");
    return overdue ? "overdue by " + text : text + " left";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-deadline")) - now) / 1000;
      if (isNaN(left)) { return; }
      var breached = left <= 0;
      el.classList.toggle("overdue", breached);
      var row = el.closest("tr");
      if (row) { row.classList.toggle("breached", breached); }
      el.textContent = (breached ? "Breached · " : "") + fmt(left);
    });
  }

  function refreshQueue(box) {
    var url = box.getAttribute("data-refresh-url");
    fetch(url, {
      credentials: "same-origin",
      headers: { "X-Portal-Poll": "1", "Accept": "text/html" },
      cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) {
        window.location.assign("/portal/login/?idle=1");
        return null;
      }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null || html === undefined) { return; }
      box.innerHTML = html;
      box.setAttribute("data-refreshed", String(Date.now()));
      tick();
    }).catch(function () { /* offline for a moment: try again next time */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
    var box = document.getElementById("queue");
    if (box) {
      var seconds = parseInt(box.getAttribute("data-refresh-seconds") || "15", 10);
      window.setInterval(function () { refreshQueue(box); }, Math.max(seconds, 2) * 1000);
    }
  });
})();
