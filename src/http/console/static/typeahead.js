// Type-ahead for the console's "new owner" fields: as the admin types, the
// page's <datalist id="people-suggest"> is filled from /console/people/suggest
// (people whose userName starts with what was typed). Without this script
// the field still takes a userName or id. Options are built with the DOM API,
// never parsed from markup: a userName is data.
(function () {
  "use strict";
  var list = document.getElementById("people-suggest");
  if (!list) return;
  var timer = null;
  var asked = "";
  document.addEventListener("input", function (e) {
    var field = e.target;
    if (!field.matches || !field.matches("input[data-suggest]")) return;
    var q = field.value.trim();
    if (q === asked) return;
    asked = q;
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!q) {
        list.replaceChildren();
        return;
      }
      fetch("/console/people/suggest?q=" + encodeURIComponent(q), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (people) {
          if (field.value.trim() !== q) return; // typed on since
          list.replaceChildren.apply(list, people.map(function (p) {
            var o = document.createElement("option");
            o.value = p.userName;
            return o;
          }));
        })
        .catch(function () { list.replaceChildren(); });
    }, 150);
  });
})();
