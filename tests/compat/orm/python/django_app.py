"""
tests/compat/orm/python/django_app.py - the ORM scenario with Django (Debian
python3-django 3.2, its mysql backend on mysqlclient).

    django_app.py plain|scoped HOST PORT USER PASSWORD DB BASE

Django 3.2 has no composite primary key (5.2 has one) and no query
constraints: in plain mode the app filters every query by userid itself, and
what Django addresses by id alone (save, refresh, delete of an object, the
forward side of a foreign key) carries no user. scoped: the user is declared
at the start of every request on the request's connection (what a
middleware would do) with SW_ORM_SCOPE.
"""

import os
import sys

import django
from django.conf import settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import check  # noqa: E402


def setup(a):
    settings.configure(
        DATABASES={"default": {
            "ENGINE": "django.db.backends.mysql", "NAME": a.db, "USER": a.user,
            "PASSWORD": a.password, "HOST": a.host, "PORT": str(a.port),
            "OPTIONS": {"charset": "utf8mb4"}}},
        INSTALLED_APPS=[], USE_TZ=False, DEFAULT_AUTO_FIELD="django.db.models.BigAutoField")
    django.setup()


def models():
    from django.db import models as m

    class Note(m.Model):
        userid = m.BigIntegerField()
        title = m.CharField(max_length=100)
        body = m.CharField(max_length=500, null=True)
        views = m.IntegerField(default=0)

        class Meta:
            app_label = "ormsuite"
            db_table = "orm_notes"

    class Comment(m.Model):
        userid = m.BigIntegerField()
        note = m.ForeignKey(Note, on_delete=m.DO_NOTHING, db_constraint=False,
                            related_name="comments")
        text = m.CharField(max_length=200)

        class Meta:
            app_label = "ormsuite"
            db_table = "orm_comments"
    return Note, Comment


class App:
    def __init__(self, a):
        self.a = a
        setup(a)
        self.Note, self.Comment = models()
        self.user = a.u1
        self.scope = os.environ.get("SW_ORM_SCOPE") if a.scoped else None
        self.first_id = None

    def begin_request(self):
        """What a middleware does first in every request."""
        if self.scope:
            from django.db import connection
            with connection.cursor() as c:
                c.execute(self.scope.replace("{userid}", str(self.user)))

    def mine(self, qs):
        return qs if self.a.scoped else qs.filter(userid=self.user)

    def notes(self):
        return self.mine(self.Note.objects.all())

    def first(self):
        return self.notes().get(title="first")

    def create(self):
        n = self.Note.objects.create(userid=self.user, title="first", body="hello")
        check(n.id and n.id > 0, "generated id", n.id)
        self.first_id = n.id

    def bulk_create(self):
        self.Note.objects.bulk_create([self.Note(userid=self.user, title="bulk-%d" % i)
                                       for i in (1, 2, 3)])
        check(self.notes().filter(title__startswith="bulk-").count() == 3, "3 bulk rows")

    def get(self):
        n = self.notes().get(pk=self.first_id)
        check(n.title == "first", "get by id", n.title)

    def paginate(self):
        from django.core.paginator import Paginator
        page = Paginator(self.notes().order_by("title"), 2).page(2)
        got = [n.title for n in page]
        check(got == ["bulk-3", "first"], "page 2", got)
        check(page.paginator.count == 4, "paginator count")

    def count(self):
        check(self.notes().count() == 4, "4 notes")

    def save(self):
        n = self.first()
        n.body = "edited"
        n.save()
        check(self.first().body == "edited", "saved body")

    def refresh(self):
        n = self.first()
        self.notes().filter(title="first").update(body="changed")
        n.refresh_from_db()
        check(n.body == "changed", "refreshed body", n.body)

    def increment(self):
        from django.db.models import F
        self.notes().filter(title="first").update(views=F("views") + 1)
        check(self.first().views == 1, "views 1")

    def upsert(self):
        n, created = self.Note.objects.update_or_create(
            userid=self.user, title="first", defaults={"body": "upserted"})
        check(not created, "updated, not created")
        n = self.first()
        check((n.body, n.views) == ("upserted", 1), "upserted body, views kept", (n.body, n.views))

    def get_or_create(self):
        a, c1 = self.Note.objects.get_or_create(userid=self.user, title="goc")
        b, c2 = self.Note.objects.get_or_create(userid=self.user, title="goc")
        check((c1, c2) == (True, False) and a.id == b.id, "created then found", (c1, c2))

    def relation_create(self):
        n = self.first()
        n.comments.create(userid=self.user, text="c1")
        n.comments.create(userid=self.user, text="c2")
        check(self.mine(self.Comment.objects.all()).count() == 2, "2 comments")

    def eager(self):
        from django.db.models import Prefetch
        comments = self.mine(self.Comment.objects.order_by("text"))
        notes = list(self.notes().order_by("title").prefetch_related(
            Prefetch("comments", queryset=comments)))
        got = {n.title: [c.text for c in n.comments.all()] for n in notes}
        check(got.get("first") == ["c1", "c2"], "eager comments", got)

    def lazy(self):
        n = self.first()
        got = [c.text for c in self.mine(n.comments.order_by("text"))]
        check(got == ["c1", "c2"], "lazy comments", got)
        c = self.mine(self.Comment.objects.all()).get(text="c1")
        check(c.note.title == "first", "lazy note of a comment")

    def delete_object(self):
        self.notes().get(title="bulk-3").delete()
        check(not self.notes().filter(title="bulk-3").exists(), "gone")

    def delete_query(self):
        n, _ = self.notes().filter(title__startswith="bulk-").delete()
        check(n >= 2, "bulk-1 and bulk-2 deleted", n)
        check(not self.notes().filter(title__startswith="bulk-").exists(), "no bulk-* left")

    def tx_commit(self):
        from django.db import transaction
        from django.db.models import F
        with transaction.atomic():
            self.Note.objects.create(userid=self.user, title="tx-a")
            self.notes().filter(title="first").update(views=F("views") + 1)
        check(self.notes().filter(title="tx-a").exists(), "tx-a")
        check(self.first().views == 2, "views 2")

    def tx_rollback(self):
        from django.db import transaction

        class Rollback(Exception):
            pass
        try:
            with transaction.atomic():
                self.Note.objects.create(userid=self.user, title="tx-b")
                check(self.notes().filter(title="tx-b").exists(), "tx-b inside")
                raise Rollback()
        except Rollback:
            pass
        check(not self.notes().filter(title="tx-b").exists(), "tx-b gone")

    def row_lock(self):
        from django.db import transaction
        with transaction.atomic():
            n = self.notes().select_for_update().get(title="first")
            n.views += 1
            n.save(update_fields=["views"])
        check(self.first().views == 3, "views 3")

    def second_user(self):
        self.user = self.a.u2
        try:
            self.begin_request()
            self.Note.objects.create(userid=self.user, title="other")
            check(self.notes().count() == 1, "1 note of user 2")
        finally:
            self.user = self.a.u1


if __name__ == "__main__":
    common.main(App)
