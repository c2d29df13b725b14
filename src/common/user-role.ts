/** A user's role; shared by the users' records and the tokens that carry it. */
export enum UserRole {
  Member = 'member',
  Admin = 'admin',
}
