// "Test all" progress: count the results swapped in so far. No inline script, no eval.
document.addEventListener("htmx:afterSettle", function () {
  var box = document.getElementById("test-all-box");
  if (!box) return;
  var done = box.querySelectorAll("[data-test-done]").length;
  box.querySelector("progress").value = done;
  box.querySelector("[data-count]").textContent = done;
});
