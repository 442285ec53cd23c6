// MathJax configuration for pymdownx.arithmatex (generic mode): arithmatex wraps inline math in
// \( \) and display math in \[ \] inside elements of class "arithmatex"; MathJax typesets only
// those. The MathJax files themselves are served from the site (assets/mathjax/, see
// docs/_hooks.py), never from a CDN.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
};

// Material's instant navigation (if enabled) swaps page content without a reload: typeset the
// new content then. The first emission is the page MathJax has just typeset at start-up; calling
// MathJax.startup.output.clearCache() there would drop the glyph styles and leave formulas blank.
if (typeof document$ !== "undefined") {
  let first = true;
  document$.subscribe(() => {
    if (first) {
      first = false;
      return;
    }
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
