# Lets plain `flask <command>` find the app when run inside this checkout.
FLASK_APP=ticket_manager
