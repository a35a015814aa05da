"""Office pages of the dispatch domain."""

from flask import Blueprint, Flask, render_template

from depot import layer as depot_layer
from depot import panel as depot_panel
from dispatch.core import auth
from maps.views import register_layer, register_map_extension

bp = Blueprint("office", __name__)


@bp.get("/")
@auth.signed_in
def home():
    """The office home page."""
    return render_template("home.html")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # The depots on the live map: the depot serves the layer and its module, maps the page, and
    # neither may import the other (DESIGN §2), so the office joins them.
    register_layer(app, "depots", depot_layer.depots_layer)
    register_map_extension(app, "depots", script=("depot_panel.static", "depots_layer.js"),
                           words=depot_panel.map_words)
