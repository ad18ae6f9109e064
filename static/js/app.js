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
