/* LeadCRM form embed: renders a form into the host page and posts it to /api/v1/capture/
   (CORS: the host page's origin must be in the form's allowed origins). Served by
   /f/<site_key>/embed.js, which puts the form's configuration in place of the placeholder below.
   No inline style or script is written into the host page (its CSP may forbid them). */
(function () {
  "use strict";
  var C = "__CONFIG__";
  var VID = "leadcrm_vid";
  var FIRST = "leadcrm_ft";
  var UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];

  function stored(key, value) {
    try {
      if (value === undefined) return window.localStorage.getItem(key);
      window.localStorage.setItem(key, value);
    } catch (e) { /* storage refused: the visitor stays anonymous */ }
    return value === undefined ? null : value;
  }

  function visitorId() {
    var v = stored(VID);
    if (!v) {
      v = window.crypto && window.crypto.randomUUID ? window.crypto.randomUUID()
        : String(Date.now()) + Math.random().toString(36).slice(2);
      stored(VID, v);
    }
    return v;
  }

  function query() { return new URLSearchParams(window.location.search); }

  function utm() {
    var out = {}, q = query();
    UTM.forEach(function (k) { var v = q.get(k); if (v) out[k] = v.slice(0, 200); });
    return out;
  }

  function firstTouch(current) {
    var raw = stored(FIRST);
    if (raw) { try { return JSON.parse(raw); } catch (e) { /* rewritten below */ } }
    var touch = Object.assign({}, current, {
      referrer: document.referrer || "", page_url: window.location.href, at: new Date().toISOString()
    });
    stored(FIRST, JSON.stringify(touch));
    return touch;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] === true) node.setAttribute(k, "");
      else if (attrs[k] !== false && attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    });
    if (text) node.textContent = text;
    return node;
  }

  function render(host, def, context) {
    var form = el("form", { "class": "leadcrm-form", novalidate: true });
    var inputs = {};
    def.fields.forEach(function (f) {
      var id = "leadcrm-" + def.site_key.slice(0, 8) + "-" + f.name;
      var row = el("p", { "class": "leadcrm-field", "data-field": f.name });
      row.appendChild(el("label", { "for": id }, f.label + (f.required ? " *" : "")));
      var input = el("input", { id: id, name: f.name, type: f.type, required: f.required });
      row.appendChild(input);
      if (f.help) row.appendChild(el("small", { "class": "leadcrm-help" }, f.help));
      row.appendChild(el("span", { "class": "leadcrm-error", role: "alert" }));
      inputs[f.name] = input;
      form.appendChild(row);
    });
    var trap = el("p", { "class": "leadcrm-hp", hidden: true, "aria-hidden": "true" });
    var honeypot = el("input", { name: def.honeypot, tabindex: "-1", autocomplete: "off" });
    trap.appendChild(honeypot);
    form.appendChild(trap);
    var consent = null;
    if (def.consent_text) {
      var label = el("label", { "class": "leadcrm-consent" });
      consent = el("input", { type: "checkbox", name: "consent" });
      label.appendChild(consent);
      label.appendChild(document.createTextNode(" " + def.consent_text));
      form.appendChild(el("p")).appendChild(label);
    }
    var message = el("p", { "class": "leadcrm-message", role: "status" });
    form.appendChild(message);
    var submit = el("button", { type: "submit", "class": "leadcrm-submit" }, context.lang === "fr" ? "Envoyer" : "Send");
    form.appendChild(el("p")).appendChild(submit);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var fields = {};
      Object.keys(inputs).forEach(function (k) { fields[k] = inputs[k].value; });
      if (honeypot.value) fields[def.honeypot] = honeypot.value;
      var body = Object.assign({
        site_key: def.site_key, fields: fields, consent: !!(consent && consent.checked), token: def.token,
        visitor_id: context.visitor, referrer: document.referrer || "", page_url: window.location.href,
        first_touch: context.first
      }, context.utm);
      form.querySelectorAll(".leadcrm-error").forEach(function (n) { n.textContent = ""; });
      submit.disabled = true;
      fetch(C.base + "api/v1/capture/", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), credentials: "omit"
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          submit.disabled = false;
          if (response.status === 202) {
            if (def.redirect_url) { window.location.assign(def.redirect_url); return; }
            var thanks = el("p", { "class": "leadcrm-thanks" },
              def.thank_you || (context.lang === "fr" ? "Merci !" : "Thank you!"));
            form.replaceWith(thanks);
            return;
          }
          if (response.status === 400 && data && typeof data === "object") {
            var shown = false;
            Object.keys(data).forEach(function (k) {
              var row = form.querySelector('[data-field="' + k + '"] .leadcrm-error');
              if (row) { row.textContent = [].concat(data[k]).join(" "); shown = true; }
            });
            if (!shown) message.textContent = JSON.stringify(data);
            return;
          }
          message.textContent = (data && data.detail) || ("Error " + response.status);
        });
      }).catch(function () {
        submit.disabled = false;
        message.textContent = context.lang === "fr" ? "Envoi impossible ; réessayez." : "Could not send; please retry.";
      });
    });
    host.replaceChildren(form);
  }

  function mount(host) {
    var current = utm();
    var context = {
      visitor: visitorId(), utm: current, first: firstTouch(current),
      lang: (document.documentElement.lang || navigator.language || "en").slice(0, 2).toLowerCase()
    };
    var url = C.base + "f/" + encodeURIComponent(C.site_key) + "/form.json?visitor_id=" +
      encodeURIComponent(context.visitor) + "&lang=" + encodeURIComponent(context.lang);
    var link = query().get("lt");
    if (link) url += "&lt=" + encodeURIComponent(link);
    fetch(url, { credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error("form " + r.status); return r.json(); })
      .then(function (def) { render(host, def, context); })
      .catch(function () { host.textContent = ""; });
  }

  function start() {
    var hosts = document.querySelectorAll('[data-leadcrm-form="' + C.site_key + '"]');
    if (!hosts.length) return;
    hosts.forEach(mount);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
