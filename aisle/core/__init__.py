"""The ground floor: settings, schemas (with the event grades and weights), errors, console and service
endpoints. Imported by every stage; imports nothing else of the project."""
