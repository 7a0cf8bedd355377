"""The app's screens: each builds its controls and talks to the API through the session."""
