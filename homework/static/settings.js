// Live branding preview: mirror the form into the preview card as the admin types.
(function () {
  "use strict";
  var form = document.getElementById("brand-form");
  var preview = document.getElementById("brand-preview");
  if (!form || !preview) { return; }
  var hex = /^#[0-9a-fA-F]{6}$/;
  function update() {
    preview.querySelectorAll("[data-from]").forEach(function (el) {
      var input = form.elements[el.getAttribute("data-from")];
      if (input) { el.textContent = input.value; }
    });
    ["primary", "accent"].forEach(function (name) {
      // A colour the host supplies has no field here: the preview shows the host's.
      var input = form.elements[name];
      var value = (input ? input.value : preview.getAttribute("data-" + name) || "").trim();
      if (hex.test(value)) { preview.style.setProperty("--bp-" + name, value); }
    });
  }
  form.addEventListener("input", update);
  update();
}());
