// The console works without this script; it only adds conveniences. Loaded from 'self' (the CSP
// allows no inline script).
'use strict';
(function () {
  // Times are shown in the browser's own zone from the next page on.
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf('mamori_tz=' + encodeURIComponent(zone)) < 0) {
      document.cookie = 'mamori_tz=' + encodeURIComponent(zone) + '; path=/; SameSite=Strict; max-age=31536000';
    }
  } catch (e) {
    // an old browser keeps the server's default zone
  }

  // Forms that undo something ask first.
  document.addEventListener('submit', function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // The allowlist editor: one more empty row on demand.
  var buttons = document.querySelectorAll('[data-add-row]');
  Array.prototype.forEach.call(buttons, function (button) {
    var table = document.getElementById(button.getAttribute('data-add-row'));
    if (!table) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      var rows = table.querySelectorAll('tbody tr');
      var last = rows[rows.length - 1];
      if (!last) return;
      var next = 0;
      Array.prototype.forEach.call(rows, function (row) {
        next = Math.max(next, Number(row.getAttribute('data-row')) + 1);
      });
      var copy = last.cloneNode(true);
      copy.setAttribute('data-row', String(next));
      Array.prototype.forEach.call(copy.querySelectorAll('input'), function (input) {
        input.name = input.name.replace(/^allow\.\d+\./, 'allow.' + next + '.');
        if (input.type === 'checkbox') input.checked = false;
        else input.value = '';
        var label = input.getAttribute('aria-label');
        if (label) input.setAttribute('aria-label', label.replace(/\d+$/, String(next + 1)));
        input.removeAttribute('aria-invalid');
        input.removeAttribute('aria-describedby');
      });
      Array.prototype.forEach.call(copy.querySelectorAll('.field-error'), function (el) {
        el.remove();
      });
      last.parentNode.appendChild(copy);
      var first = copy.querySelector('input');
      if (first) first.focus();
    });
  });
})();
