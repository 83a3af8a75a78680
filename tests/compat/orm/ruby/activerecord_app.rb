# tests/compat/orm/ruby/activerecord_app.rb - the ORM scenario with
# ActiveRecord (Debian ruby-activerecord 6.1, ruby-mysql2).
#
#     ruby activerecord_app.rb plain|scoped HOST PORT USER PASSWORD DB BASE
#
# ActiveRecord 6.1 has no composite primary key and no query constraints
# (7.1 adds both): in plain mode the app limits every relation by userid
# itself, and what ActiveRecord addresses by id alone (save, reload, destroy,
# belongs_to) carries no user. Plain mode loads the schema cache dump (see
# below) and sets `self.primary_key = 'id'`, so ActiveRecord reads nothing
# from information_schema. scoped: the user is declared at the start of every request on the
# request's connection (what an around_action does) with SW_ORM_SCOPE.

require 'active_record'

STEPS = %w[create bulk_create get paginate count save refresh increment upsert get_or_create
           relation_create eager lazy delete_object delete_query tx_commit tx_rollback row_lock
           second_user].freeze

if ARGV.size != 7 || !%w[plain scoped].include?(ARGV[0])
  abort "usage: #{$PROGRAM_NAME} plain|scoped HOST PORT USER PASSWORD DB BASE"
end
MODE, HOST, PORT, USER, PASSWORD, DB, BASE = ARGV
SCOPED = MODE == 'scoped'
U1 = Integer(BASE) + 1
U2 = Integer(BASE) + 2

ActiveRecord::Base.establish_connection(adapter: 'mysql2', host: HOST, port: Integer(PORT),
                                        username: USER, password: PASSWORD, database: DB,
                                        encoding: 'utf8mb4', pool: 2)
# Rails' production setting use_schema_cache_dump: the tables' columns come
# from db/schema_cache.yml (here: schema_cache.yml, dumped from a shard with
# `SchemaCache#dump_to`), not from information_schema at run time.
unless SCOPED
  cache = ActiveRecord::ConnectionAdapters::SchemaCache.load_from(File.join(__dir__, 'schema_cache.yml'))
  ActiveRecord::Base.connection_pool.set_schema_cache(cache)
end

# The request's user (Rails' CurrentAttributes). In plain mode the
# associations are scoped to it, so lazy and eager loads name the user.
class Current < ActiveSupport::CurrentAttributes
  attribute :userid
end
MINE = SCOPED ? nil : -> { where(userid: Current.userid) }

class Note < ActiveRecord::Base
  self.table_name = 'orm_notes'
  self.primary_key = 'id'
  has_many :comments, MINE, foreign_key: :note_id, inverse_of: :note
end

class Comment < ActiveRecord::Base
  self.table_name = 'orm_comments'
  self.primary_key = 'id'
  belongs_to :note, MINE
end

class CheckFailed < StandardError; end

def check(cond, what, got = nil)
  raise CheckFailed, "wrong result: #{what}#{got.nil? ? '' : " (got #{got.inspect})"}" unless cond
end

def mysql_error(e)
  x = e
  while x
    return "#{x.error_number} #{x.message.split.join(' ')}" if x.respond_to?(:error_number) && x.error_number
    x = x.cause
  end
  "#{e.class}: #{e.message.lines.first&.strip}"
end

class App
  def initialize
    @user = U1
  end

  def begin_request
    Current.userid = @user
    ActiveRecord::Base.connection.execute(ENV.fetch('SW_ORM_SCOPE').sub('{userid}', @user.to_s)) if SCOPED
  end

  def mine(rel)
    SCOPED ? rel : rel.where(userid: @user)
  end

  def notes
    mine(Note.all)
  end

  def first
    notes.find_by!(title: 'first')
  end

  def create
    n = Note.create!(userid: @user, title: 'first', body: 'hello')
    check(n.id.to_i.positive?, 'generated id', n.id)
    @first_id = n.id
  end

  def bulk_create
    Note.insert_all!((1..3).map { |i| { userid: @user, title: "bulk-#{i}" } })
    check(notes.where('title LIKE ?', 'bulk-%').count == 3, '3 bulk rows')
  end

  def get
    n = notes.find(@first_id)
    check(n.title == 'first', 'get by id', n.title)
  end

  def paginate
    got = notes.order(:title).limit(2).offset(2).pluck(:title)
    check(got == %w[bulk-3 first], 'page 2', got)
  end

  def count
    check(notes.count == 4, '4 notes', notes.count)
  end

  def save
    n = first
    n.body = 'edited'
    n.save!
    check(first.body == 'edited', 'saved body')
  end

  def refresh
    n = first
    notes.where(title: 'first').update_all(body: 'changed')
    n.reload
    check(n.body == 'changed', 'refreshed body', n.body)
  end

  def increment
    notes.where(title: 'first').update_counters(views: 1)
    check(first.views == 1, 'views 1', first.views)
  end

  def upsert
    Note.upsert({ userid: @user, title: 'first', body: 'upserted' })
    n = first
    check([n.body, n.views] == ['upserted', 1], 'upserted body, views kept', [n.body, n.views])
    check(notes.count == 4, 'still 4 notes')
  end

  def get_or_create
    a = notes.find_or_create_by!(userid: @user, title: 'goc')
    b = notes.find_or_create_by!(userid: @user, title: 'goc')
    check(a.previously_new_record? && !b.previously_new_record? && a.id == b.id, 'created then found')
  end

  def relation_create
    n = first
    n.comments.create!(userid: @user, text: 'c1')
    n.comments.create!(userid: @user, text: 'c2')
    check(mine(Comment.all).count == 2, '2 comments')
  end

  def eager
    f = notes.preload(:comments).order(:title).to_a.find { |n| n.title == 'first' }
    got = f&.comments&.map(&:text)&.sort
    check(got == %w[c1 c2], 'eager comments', got)
  end

  def lazy
    n = first
    got = n.comments.order(:text).map(&:text)
    check(got == %w[c1 c2], 'lazy comments', got)
    c = mine(Comment.all).find_by!(text: 'c1')
    check(c.note.title == 'first', 'lazy note of a comment')
  end

  def delete_object
    notes.find_by!(title: 'bulk-3').destroy!
    check(!notes.exists?(title: 'bulk-3'), 'gone')
  end

  def delete_query
    n = notes.where('title LIKE ?', 'bulk-%').delete_all
    check(n >= 2, 'bulk-1 and bulk-2 deleted', n)
    check(!notes.where('title LIKE ?', 'bulk-%').exists?, 'no bulk-* left')
  end

  def tx_commit
    Note.transaction do
      Note.create!(userid: @user, title: 'tx-a')
      notes.where(title: 'first').update_counters(views: 1)
    end
    check(notes.exists?(title: 'tx-a'), 'tx-a')
    check(first.views == 2, 'views 2')
  end

  def tx_rollback
    Note.transaction do
      Note.create!(userid: @user, title: 'tx-b')
      check(notes.exists?(title: 'tx-b'), 'tx-b inside')
      raise ActiveRecord::Rollback
    end
    check(!notes.exists?(title: 'tx-b'), 'tx-b gone')
  end

  def row_lock
    Note.transaction do
      n = notes.lock.find_by!(title: 'first')
      n.views += 1
      n.save!
    end
    check(first.views == 3, 'views 3')
  end

  def second_user
    @user = U2
    begin_request
    Note.create!(userid: @user, title: 'other')
    check(notes.count == 1, '1 note of user 2')
  ensure
    @user = U1
  end
end

app = App.new
failed = 0
STEPS.each do |step|
  app.begin_request
  app.send(step)
  puts "ok #{step}"
rescue StandardError => e
  failed += 1
  msg = e.is_a?(CheckFailed) ? e.message : mysql_error(e)
  puts "FAIL #{step}: #{msg}"
  warn e.full_message unless e.is_a?(CheckFailed) || msg.start_with?('1235 ')
ensure
  $stdout.flush
end
puts "DONE #{STEPS.size - failed} ok, #{failed} failed"
