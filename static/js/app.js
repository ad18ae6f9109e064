// "Test all" progress: each row's health cell is replaced as its result arrives, so count
// the cells still pending and the results marked as failed. No inline script, no eval.
document.addEventListener("htmx:afterSettle", function () {
  var box = document.getElementById("test-all-box");
  if (!box || !box.querySelector("progress")) return;
  var total = Number(box.dataset.testTotal);
  var done = total - document.querySelectorAll("[data-test-pending]").length;
  var failed = document.querySelectorAll("[data-test-batch=failed]").length;
  var busy = document.querySelectorAll("[data-test-batch=busy]").length;
  box.querySelector("progress").value = done;
  box.querySelector("[data-count]").textContent = done;
  box.querySelector("[data-failed-count]").textContent = failed;
  box.querySelector("[data-failed]").hidden = failed === 0;
  box.querySelector("[data-busy-count]").textContent = busy;
  box.querySelector("[data-busy]").hidden = busy === 0;
});

// Copy buttons (token snippets): shown only when JavaScript runs; the text stays selectable
// without it. The text is read from the page when clicked, never kept anywhere else.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;
  });
});
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.dataset.copy);
  var status = document.querySelector('[data-copied="' + button.dataset.copy + '"]');
  var say = function (text) { if (status) status.textContent = text; };
  var selectIt = function () {
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    say("Selected: press Ctrl+C (⌘C) to copy");
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(source.textContent).then(function () { say("Copied"); }, selectIt);
  } else {
    selectIt();
  }
});
