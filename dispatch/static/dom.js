// Building the page from data without ever parsing it as HTML. Names, payloads and messages come
// from the database, gateways and imports: `el` and `svg` put every string in a text node or an
// attribute value, so `<img src=x onerror=…>` shows as those characters and never runs. Every
// page builds its DOM with these two; none uses innerHTML with data.
//
//   el("p", { class: "note", "data-code": code }, name, " ", el("b", null, value))
//
// Attributes: null, undefined and false are left out, true is an empty attribute; `style` takes
// an object of CSS properties (set through the CSSOM, which the Content-Security-Policy allows);
// event handler attributes (on…) are refused (use addEventListener), and a URL attribute keeps
// only http(s), mailto and tel links or a relative one. Children: nodes, strings and numbers
// (text), nested arrays; null, undefined and false are skipped.

export const SVG_NS = "http://www.w3.org/2000/svg";

const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href"]);
const SAFE_SCHEMES = new Set(["http:", "https:", "mailto:", "tel:"]);

function safeUrl(value) {
  try {
    return SAFE_SCHEMES.has(new URL(value, document.baseURI).protocol);
  } catch {
    return false;
  }
}

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (/^on/i.test(key)) throw new TypeError(`el: no ${key} attribute; use addEventListener`);
    if (key === "style") {
      for (const [property, v] of Object.entries(value)) node.style.setProperty(property, v);
    } else if (URL_ATTRIBUTES.has(key) && !safeUrl(String(value))) {
      continue;
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element with attributes and children (strings become text nodes). */
export function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element with attributes and children (strings become text nodes). */
export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}
