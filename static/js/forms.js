// Forms: a refused form's answer is shown in place, and focus goes where the person must act.
// Progressive enhancement only: every form works without this file. No inline script, no eval.
(function () {
  "use strict";

  // The error summary of a refused form (or else its first invalid field) takes the focus,
  // so that a screen reader reads what is wrong and the keyboard is where it is fixed.
  function focusProblem(root) {
    var target = root.querySelector("#error-summary") || root.querySelector("[aria-invalid=true]");
    if (target) target.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusProblem(document);
  });

  // A link of the summary focuses its field (a fragment link only scrolls to it).
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".error-summary a[href^='#']");
    if (!link) return;
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (field) {
      event.preventDefault();
      field.focus();
      field.scrollIntoView({ block: "center" });
    }
  });

  // 422 (a refused form) is swapped in: the answer holds the field errors.
  document.addEventListener("htmx:afterSettle", function (event) {
    var xhr = event.detail.xhr;
    var root = event.detail.target;
    if (!xhr || xhr.status !== 422 || !root) return;
    // Swapped outerHTML, the old target has left the page: its successor has the same id.
    if (!root.isConnected) root = (root.id && document.getElementById(root.id)) || document;
    focusProblem(root);
  });

  // Any other error answer is not swapped (it is not a part of the page): say so instead of
  // failing silently.
  document.addEventListener("htmx:responseError", function (event) {
    var box = document.getElementById("messages");
    var xhr = event.detail.xhr;
    if (!box || !xhr) return;
    var note = document.createElement("p");
    note.className = "flash flash-error";
    note.setAttribute("role", "alert");
    note.textContent = "The server refused this (HTTP " + xhr.status + "): " +
      (xhr.status === 403 ? "your role does not allow it." :
       xhr.status === 404 ? "it no longer exists; reload the page." :
       "reload the page and try again.");
    box.replaceChildren(note);
  });

  // A connection test elsewhere on the page (its answer names the provider) refreshes the
  // Model suggestions shown for that provider: they come from its model list.
  document.addEventListener("provider-tested", function (event) {
    var name = event.detail && event.detail.provider;
    document.querySelectorAll("[data-models-of]").forEach(function (list) {
      var source = document.getElementById(list.dataset.modelsOf);
      if (source && source.value === name && window.htmx) window.htmx.trigger(list, "refresh-models");
    });
  });
})();
