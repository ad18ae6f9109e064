// In-page confirmation: every hx-confirm question is asked in the page's <dialog>
// (base.html) rather than by window.confirm(). Without JavaScript the forms post as they are.
document.addEventListener("htmx:confirm", function (event) {
  var question = event.detail.question;
  var dialog = document.getElementById("confirm-dialog");
  if (!question || !dialog || typeof dialog.showModal !== "function") return;
  event.preventDefault();
  dialog.querySelector("[data-question]").textContent = question;
  dialog.returnValue = "";
  dialog.addEventListener("close", function () {
    if (dialog.returnValue === "confirm") event.detail.issueRequest(true);
  }, { once: true });
  dialog.showModal();
});
