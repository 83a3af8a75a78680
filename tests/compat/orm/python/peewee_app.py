"""
tests/compat/orm/python/peewee_app.py - the ORM scenario with peewee (Debian
python3-peewee 3.14, PyMySQL driver).

    peewee_app.py plain|scoped HOST PORT USER PASSWORD DB BASE

plain: CompositeKey('userid', 'id'), so save, delete_instance and get_by_id
carry the user. peewee cannot generate part of a composite key, so the app
assigns ids (common.Args.new_id). A ForeignKeyField points at one field, so
relation queries get the user from the app (`.where(Comment.userid == u)`).
scoped: an AutoField id, as without sharding; the user is declared right
after the request's connect() with SW_ORM_SCOPE (peewee's documented
connect-per-request pattern).
"""

import os
import sys

from peewee import (BigAutoField, BigIntegerField, CharField, CompositeKey,
                    ForeignKeyField, IntegerField, Model, MySQLDatabase, prefetch)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import check  # noqa: E402


def models(db, scoped):
    class Base(Model):
        class Meta:
            database = db

    if scoped:
        class Note(Base):
            id = BigAutoField()
            userid = BigIntegerField()
            title = CharField(max_length=100)
            body = CharField(max_length=500, null=True)
            views = IntegerField(default=0)

            class Meta:
                table_name = "orm_notes"
    else:
        class Note(Base):
            userid = BigIntegerField()
            id = BigIntegerField()
            title = CharField(max_length=100)
            body = CharField(max_length=500, null=True)
            views = IntegerField(default=0)

            class Meta:
                table_name = "orm_notes"
                primary_key = CompositeKey("userid", "id")

    if scoped:
        class Comment(Base):
            id = BigAutoField()
            userid = BigIntegerField()
            note = ForeignKeyField(Note, column_name="note_id", backref="comments")
            text = CharField(max_length=200)

            class Meta:
                table_name = "orm_comments"
    else:
        class Comment(Base):
            userid = BigIntegerField()
            id = BigIntegerField()
            note = ForeignKeyField(Note, field=Note.id, column_name="note_id", backref="comments")
            text = CharField(max_length=200)

            class Meta:
                table_name = "orm_comments"
                primary_key = CompositeKey("userid", "id")
    return Note, Comment


class App:
    def __init__(self, a):
        self.a = a
        self.db = MySQLDatabase(a.db, host=a.host, port=a.port, user=a.user,
                                password=a.password, charset="utf8mb4")
        self.Note, self.Comment = models(self.db, a.scoped)
        self.user = a.u1
        self.scope = os.environ.get("SW_ORM_SCOPE") if a.scoped else None
        self.first_id = None

    def begin_request(self):
        """Before each request: connect (and declare the user)."""
        if not self.db.is_closed():
            self.db.close()
        self.db.connect()
        if self.scope:
            self.db.execute_sql(self.scope.replace("{userid}", str(self.user)))

    def ids(self):
        """Fields an insert adds: the app-assigned id in plain mode."""
        return {} if self.a.scoped else {"id": self.a.new_id()}

    def notes(self):
        q = self.Note.select()
        return q if self.a.scoped else q.where(self.Note.userid == self.user)

    def comments(self, q=None):
        q = self.Comment.select() if q is None else q
        return q if self.a.scoped else q.where(self.Comment.userid == self.user)

    def first(self):
        return self.notes().where(self.Note.title == "first").get()

    def create(self):
        n = self.Note.create(userid=self.user, title="first", body="hello", **self.ids())
        check(n.id is not None, "id", n.id)
        self.first_id = n.id

    def bulk_create(self):
        self.Note.bulk_create([self.Note(userid=self.user, title="bulk-%d" % i, **self.ids())
                               for i in (1, 2, 3)])
        check(self.notes().where(self.Note.title.startswith("bulk-")).count() == 3,
              "3 bulk rows")

    def get(self):
        n = self.Note.get_by_id(self.first_id if self.a.scoped else (self.user, self.first_id))
        check(n.title == "first", "get by identity", n.title)

    def paginate(self):
        got = [n.title for n in self.notes().order_by(self.Note.title).paginate(2, 2)]
        check(got == ["bulk-3", "first"], "page 2", got)

    def count(self):
        check(self.notes().count() == 4, "4 notes")

    def save(self):
        n = self.first()
        n.body = "edited"
        n.save()
        check(self.first().body == "edited", "saved body")

    def refresh(self):
        n = self.first()
        self.Note.update(body="changed").where(self.Note.userid == self.user,
                                               self.Note.title == "first").execute()
        n = self.Note.get_by_id(n.get_id())      # peewee's refresh: get by identity
        check(n.body == "changed", "refreshed body", n.body)

    def increment(self):
        self.Note.update(views=self.Note.views + 1).where(
            self.Note.userid == self.user, self.Note.title == "first").execute()
        check(self.first().views == 1, "views 1")

    def upsert(self):
        self.Note.insert(userid=self.user, title="first", body="upserted", **self.ids()) \
            .on_conflict(preserve=[self.Note.body]).execute()
        n = self.first()
        check((n.body, n.views) == ("upserted", 1), "upserted body, views kept", (n.body, n.views))
        check(self.notes().count() == 4, "still 4 notes")

    def get_or_create(self):
        a, c1 = self.Note.get_or_create(userid=self.user, title="goc", defaults=self.ids())
        b, c2 = self.Note.get_or_create(userid=self.user, title="goc", defaults=self.ids())
        check((c1, c2) == (True, False) and a.id == b.id, "created then found", (c1, c2))

    def relation_create(self):
        n = self.first()
        for t in ("c1", "c2"):
            self.Comment.create(userid=self.user, note=n, text=t, **self.ids())
        check(self.comments().count() == 2, "2 comments")

    def eager(self):
        notes = prefetch(self.notes().order_by(self.Note.title),
                         self.comments().order_by(self.Comment.text))
        got = {n.title: [c.text for c in n.comments] for n in notes}
        check(got.get("first") == ["c1", "c2"], "eager comments", got)

    def lazy(self):
        n = self.first()
        got = [c.text for c in self.comments(n.comments).order_by(self.Comment.text)]
        check(got == ["c1", "c2"], "lazy comments", got)
        c = self.comments().where(self.Comment.text == "c1").get()
        check(c.note.title == "first", "lazy note of a comment")

    def delete_object(self):
        self.notes().where(self.Note.title == "bulk-3").get().delete_instance()
        check(not self.notes().where(self.Note.title == "bulk-3").exists(), "gone")

    def delete_query(self):
        q = self.Note.delete().where(self.Note.title.startswith("bulk-"))
        n = (q if self.a.scoped else q.where(self.Note.userid == self.user)).execute()
        check(n >= 2, "bulk-1 and bulk-2 deleted", n)
        check(not self.notes().where(self.Note.title.startswith("bulk-")).exists(),
              "no bulk-* left")

    def tx_commit(self):
        with self.db.atomic():
            self.Note.create(userid=self.user, title="tx-a", **self.ids())
            n = self.first()
            n.views += 1
            n.save()
        check(self.notes().where(self.Note.title == "tx-a").exists(), "tx-a")
        check(self.first().views == 2, "views 2")

    def tx_rollback(self):
        with self.db.atomic() as tx:
            self.Note.create(userid=self.user, title="tx-b", **self.ids())
            check(self.notes().where(self.Note.title == "tx-b").exists(), "tx-b inside")
            tx.rollback()
        check(not self.notes().where(self.Note.title == "tx-b").exists(), "tx-b gone")

    def row_lock(self):
        with self.db.atomic():
            n = self.notes().where(self.Note.title == "first").for_update().get()
            n.views += 1
            n.save()
        check(self.first().views == 3, "views 3")

    def second_user(self):
        self.user = self.a.u2
        try:
            self.begin_request()
            self.Note.create(userid=self.user, title="other", **self.ids())
            check(self.notes().count() == 1, "1 note of user 2")
        finally:
            self.user = self.a.u1


if __name__ == "__main__":
    common.main(App)
