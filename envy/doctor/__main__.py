from envy.doctor.cli import main

raise SystemExit(main())
