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
