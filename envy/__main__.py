from envy.cli import main

raise SystemExit(main())
