"""Users (admin): the people who have signed in, their roles (everywhere and per project), last seen; change roles,
deactivate or reactivate someone. Every change is checked and audited in services.people."""

import streamlit as st

from services.people import list_people
from services.projects import list_projects
from ui import people as view
from ui.state import engine

st.title("Users")
st.caption("People appear here after their first sign-in. Roles: annotator (import, dataset, queue, Label Studio), "
           "clinician (review, extract), researcher (train, models, explain, audit), admin (everything).")
view.flash()
people = list_people(engine())
projects = {p.name: p.id for p in list_projects(engine())}
if not people:
    st.info("Nobody has signed in yet. In single-user mode you act as the local OS user with every role; people "
            "and their roles appear once sign-in is configured (README: Sharing ReportLens).")
    st.stop()
view.people_table(people, {pid: name for name, pid in projects.items()})
st.subheader("Change")
person = view.pick_person(people)
view.role_editor(person, projects)
view.activation(person)
