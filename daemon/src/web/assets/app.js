// Tributary's web UI: live health on every page, hand-written (no library
// is needed for this). The page names the latest health event sequence it
// was read at (`data-seq` on <body>); /ui/live streams every change after it
// as server-sent events, authenticated by the session cookie. Each event
// updates, in place, every status chip and card of the entity it is about:
// the icon, the word and the colour. After a dropped connection the browser
// reconnects by itself sending `Last-Event-ID` (the last sequence it saw), so
// nothing is missed and nothing repeats.
(function () {
  'use strict';
  var WORDS = {
    HEALTHY: ['\u2713', 'Healthy'],
    WARNING: ['!', 'Warning'],
    UNHEALTHY: ['\u2715', 'Failed'],
    UNKNOWN: ['?', 'Unknown'],
  };
  var live = document.getElementById('live');
  var seq = document.body.getAttribute('data-seq');
  if (!live || !window.EventSource || seq === null || seq === 'null') return;

  function say(text) { live.textContent = text; }

  function apply(change) {
    var parts = WORDS[change.status];
    if (!parts) return;
    var chips = document.querySelectorAll('[data-entity="' + CSS.escape(change.entity) + '"]');
    chips.forEach(function (el) {
      el.setAttribute('data-status', change.status);
      var icon = el.querySelector('.icon');
      var word = el.querySelector('.word');
      if (icon) icon.textContent = parts[0];
      if (word) word.textContent = parts[1];
      var card = el.closest('.card');
      if (card && card.getAttribute('data-card') === change.entity) {
        card.setAttribute('data-status', change.status);
      }
    });
    if (chips.length > 0) {
      say(change.kind.toLowerCase() + ' ' + change.key + ' is now ' + parts[1].toLowerCase());
    }
  }

  var source = new EventSource('/ui/live?after=' + encodeURIComponent(seq));
  source.addEventListener('open', function () { say('Live updates: on'); });
  source.addEventListener('error', function () { say('Live updates: reconnecting…'); });
  source.addEventListener('health', function (e) {
    try { apply(JSON.parse(e.data)); } catch (err) { /* a malformed event changes nothing */ }
  });
  // The session ended (signed out elsewhere, or its token was removed).
  source.addEventListener('signed-out', function () {
    source.close();
    say('Live updates: signed out');
  });
})();
