// The run page's log tail: asks the API for lines newer than the last one
// shown, appends them, and stops once the run is over and nothing is left.
(function () {
  var pre = document.getElementById("run-log");
  if (!pre || pre.dataset.finished === "1") return;
  var status = document.getElementById("run-log-status");
  var next = parseInt(pre.dataset.next || "0", 10);
  var delay = 1000;

  function time(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toTimeString().slice(0, 8);
  }

  function append(lines) {
    var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    lines.forEach(function (line) {
      var span = document.createElement("span");
      span.className = "log-" + line.stream;
      var where = "fold " + line.fold + (line.stream === "stdout" ? "" : " " + line.stream);
      span.textContent = "[" + where + " " + time(line.at) + "] " + line.text + "\n";
      pre.appendChild(span);
    });
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  function poll() {
    fetch(pre.dataset.url + "?after=" + next, {credentials: "same-origin",
                                               headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (page) {
        append(page.lines);
        next = page.next;
        if (page.finished) {
          status.textContent = page.truncated ? "The run is over (its log was cut)." :
            "The run is over.";
          return;
        }
        status.textContent = "Following the log…";
        delay = 1000;
        setTimeout(poll, page.lines.length ? 200 : delay);
      })
      .catch(function (error) {
        status.textContent = "Could not read the log (" + error.message + "); trying again.";
        delay = Math.min(delay * 2, 15000);
        setTimeout(poll, delay);
      });
  }
  setTimeout(poll, 500);
})();
