from envy.app.cli import main

raise SystemExit(main())
