"""Office pages of the dispatch domain."""

from flask import Blueprint, Flask, render_template

from dispatch.core import auth

bp = Blueprint("office", __name__)


@bp.get("/")
@auth.signed_in
def home():
    """The office home page."""
    return render_template("home.html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
