// The sandbox's text areas become CodeMirror editors. Without JavaScript (or
// without CodeMirror) they stay plain text areas and the form works the same:
// CodeMirror copies its text back into the text area when the form is sent.
(function () {
  "use strict";

  function modeFor(fileName) {
    return /\.py$/.test(fileName || "") ? "python" : null;
  }

  function upgrade(textarea) {
    var editor = window.CodeMirror.fromTextArea(textarea, {
      mode: modeFor(textarea.getAttribute("data-file")),
      lineNumbers: true,
      indentUnit: 4,
      tabSize: 4,
      indentWithTabs: false,
      viewportMargin: Infinity,
      extraKeys: {
        // Tab indents with spaces, as Python code expects.
        Tab: function (cm) {
          if (cm.somethingSelected()) {
            cm.indentSelection("add");
          } else {
            cm.replaceSelection(new Array(cm.getOption("indentUnit") + 1).join(" "), "end");
          }
        },
        "Shift-Tab": function (cm) { cm.indentSelection("subtract"); }
      }
    });
    // Warn before leaving with unsaved edits.
    editor.on("change", function () { dirty = true; });
    return editor;
  }

  var dirty = false;

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.CodeMirror) { return; }
    var textareas = document.querySelectorAll("textarea[data-editor]");
    Array.prototype.forEach.call(textareas, upgrade);
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
      form.addEventListener("submit", function () { dirty = false; });
    });
    window.addEventListener("beforeunload", function (event) {
      if (dirty) { event.preventDefault(); event.returnValue = ""; }
    });
  });
})();
