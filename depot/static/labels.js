// Depot labels (depot/templates/depot/labels.html): the print button opens the browser's print
// dialog. Everything else on the page is static HTML and CSS.

const button = document.getElementById("print");
if (button) button.addEventListener("click", () => window.print());
