// The couple's page: copy a check-in link, and narrow the "give new homework" list.
// A file, not inline script, so it runs under the strict Content-Security-Policy. Without
// it the page still works: the link can be selected by hand and the list scrolls.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector(".hw-copied");
    if (!field) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = field.textContent.trim();
      function done() { if (status) { status.textContent = button.getAttribute("data-copied"); } }
      function bySelection() {
        // Older browsers, and plain http away from localhost, have no clipboard API.
        var range = document.createRange();
        range.selectNodeContents(field);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        if (document.execCommand("copy")) { done(); }
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, bySelection);
      } else {
        bySelection();
      }
    });
  });

  var box = document.querySelector("[data-filter-for]");
  if (!box) { return; }
  var list = document.getElementById(box.getAttribute("data-filter-for"));
  var input = box.querySelector("input");
  var count = document.getElementById("choose-count");
  var none = list.querySelector("[data-none]");
  var choices = Array.prototype.slice.call(list.querySelectorAll("label"));
  var original = count.textContent;
  box.hidden = false;
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    choices.forEach(function (label) {
      var text = label.textContent.toLowerCase();
      // A ticked choice stays in view: narrowing the list never hides what is chosen.
      var keep = label.querySelector("input").checked ||
        words.every(function (w) { return text.indexOf(w) !== -1; });
      label.hidden = !keep;
      if (keep) { shown += 1; }
    });
    none.hidden = shown > 0;
    count.textContent = words.length
      ? count.getAttribute("data-of").replace("{shown}", shown).replace("{all}", choices.length)
      : original;
  });
}());
