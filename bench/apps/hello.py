"""Baseline (a): the floor. A bare Falcon app on the same gunicorn settings."""

import falcon


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "hello"


app = falcon.App()
app.add_route("/hello", Hello())
