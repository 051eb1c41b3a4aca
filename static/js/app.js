// Chat composer: Enter sends, Shift+Enter starts a new line (as in every chat app). Delegated from the
// document, so composers swapped in by htmx work too; an IME composition's Enter is left alone.
document.addEventListener("keydown", function (event) {
  var box = event.target;
  if (event.key !== "Enter" || event.shiftKey || event.isComposing || !box.matches("form.composer textarea")) {
    return;
  }
  event.preventDefault();
  if (box.value.trim()) {
    box.form.requestSubmit();
  }
});

// A plain (non-htmx) form goes once: a second click before the next page arrives would send it again
// (two chats, two runs). Its submit buttons are disabled a tick after the submit, so the clicked one's
// name and value still travel, and enabled again after a few seconds (a download leaves the page in
// place; an upload never answers with one, and may take longer, so it waits for the next page) or
// when the browser shows the page again from its back-forward cache.
function setSentOnce(buttons, sent) {
  buttons.forEach(function (button) {
    button.disabled = sent;
    button.toggleAttribute("data-sent-once", sent);
  });
}

document.addEventListener("submit", function (event) {
  var form = event.target;
  if (event.defaultPrevented || (form.getAttribute("method") || "").toLowerCase() !== "post") {
    return;
  }
  var buttons = Array.prototype.filter.call(form.elements, function (element) {
    return element.type === "submit" && !element.disabled;
  });
  setTimeout(function () { setSentOnce(buttons, true); }, 0);
  if (form.enctype !== "multipart/form-data") {
    setTimeout(function () { setSentOnce(buttons, false); }, 5000);
  }
});

window.addEventListener("pageshow", function (event) {
  if (event.persisted) {
    setSentOnce(Array.prototype.slice.call(document.querySelectorAll("[data-sent-once]")), false);
  }
});
