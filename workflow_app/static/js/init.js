// Mark the page as having JavaScript, as the NHS.UK page template does inline
// (kept in a file so the Content-Security-Policy can forbid inline scripts).
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' nhsuk-frontend-supported' : '');
