"""axe-core (vendored: static/vendor/axe.min.js, its licence beside it) run in a page of the browser tests. The
script is loaded from the live server's own static files, so the pages' Content-Security-Policy (script-src
'self') allows it as it is, with no exception for the tests."""

from __future__ import annotations

# Rules switched off, each with its reason. Empty: every rule axe runs for WCAG 2.0/2.1 A and AA and its best
# practices applies to every page tested.
DISABLED_RULES: dict[str, str] = {}
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def axe_violations(page, live_server) -> list[str]:
    """Every violation axe finds in the page as it is now, one line each (rule, impact, the first nodes)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=f"{live_server.url}/static/vendor/axe.min.js")
    result = page.evaluate(
        """([tags, disabled]) => axe.run(document, {
            runOnly: {type: 'tag', values: tags},
            rules: Object.fromEntries(disabled.map((rule) => [rule, {enabled: false}])),
        }).then((r) => r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(
                (n) => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 200)),
        })))""",
        [TAGS, list(DISABLED_RULES)],
    )
    return [f"{v['id']} ({v['impact']}): {v['help']} -> {v['nodes']}" for v in result]
