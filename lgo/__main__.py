from lgo.cli.main import app

app(prog_name="lgo")
