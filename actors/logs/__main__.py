"""`python -m actors.logs tail ...`."""

from actors.logs.cli import main

raise SystemExit(main())
