from __future__ import annotations

from ajc_gitops.cli.app import main

if __name__ == "__main__":
    main()
